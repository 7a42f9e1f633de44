// Package capture reads token usage out of LLM providers' own responses:
// OpenAI's Chat Completions and Responses APIs (and the OpenAI-compatible
// servers that copy them), Anthropic's Messages API and Gemini's
// generateContent, each whole or streamed as server-sent events. The
// functions are pure: bytes in, a Usage out. docs/capture.md gives each
// provider's token semantics and how they map onto an event.
package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/tokenledger/tokenledger"
)

// Kind is the response shape a provider speaks.
type Kind string

// The shapes capture reads.
const (
	OpenAI    Kind = "openai"
	Anthropic Kind = "anthropic"
	Gemini    Kind = "gemini"
)

// ParseKind returns the Kind named s, or an error naming the ones known.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case OpenAI, Anthropic, Gemini:
		return k, nil
	}
	return "", fmt.Errorf("%q is not a provider capture reads; use openai, anthropic or gemini", s)
}

// Usage is one response's usage in the ledger's semantics: Prompt counts
// every input token (cache read and cache write included), Completion
// every output token (reasoning included).
type Usage struct {
	// ID is the provider's response id (chatcmpl-…, resp_…, msg_…,
	// Gemini's responseId); "" when the response has none.
	ID    string
	Model string

	Prompt, Completion, CacheRead, CacheWrite, Reasoning int64
}

// ErrNoUsage matches (errors.Is) every error for a response that carries
// no usage (an error body, a stream cut before its usage event).
var ErrNoUsage = errors.New("the response carries no usage")

// noUsage is an error that says what is missing and is ErrNoUsage.
type noUsage string

func (e noUsage) Error() string        { return string(e) }
func (e noUsage) Is(target error) bool { return target == ErrNoUsage }

func noUsagef(format string, args ...any) error { return noUsage(fmt.Sprintf(format, args...)) }

// Event returns u as an event for provider, with the ids and metadata
// the caller knows (the user, the session, the request's path).
func (u Usage) Event(provider string) tokenledger.Event {
	return tokenledger.Event{
		ID: u.ID, Model: u.Model, Provider: provider,
		PromptTokens: u.Prompt, CompletionTokens: u.Completion,
		CacheReadTokens: u.CacheRead, CacheWriteTokens: u.CacheWrite, ReasoningTokens: u.Reasoning,
		TotalTokens: u.Prompt + u.Completion,
	}
}

// check returns an error when a count is negative, above the ledger's
// limit, or when the buckets do not fit inside their totals.
func (u Usage) check() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"prompt", u.Prompt}, {"completion", u.Completion}, {"cache read", u.CacheRead}, {"cache write", u.CacheWrite}, {"reasoning", u.Reasoning}} {
		if f.v < 0 || f.v > tokenledger.MaxTokens {
			return fmt.Errorf("the response's %s token count %d is outside 0 to %d", f.name, f.v, int64(tokenledger.MaxTokens))
		}
	}
	if u.CacheRead+u.CacheWrite > u.Prompt {
		return fmt.Errorf("the response's cache tokens (%d) exceed its input tokens (%d)", u.CacheRead+u.CacheWrite, u.Prompt)
	}
	if u.Reasoning > u.Completion {
		return fmt.Errorf("the response's reasoning tokens (%d) exceed its output tokens (%d)", u.Reasoning, u.Completion)
	}
	return nil
}

// count is a token count as a provider writes it: a JSON number that
// must be a whole number, read without float rounding.
type count int64

func (c *count) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = 0
		return nil
	}
	var n json.Number
	if b[0] == '"' || json.Unmarshal(b, &n) != nil {
		return fmt.Errorf("a token count is not a number: %s", b)
	}
	v, err := n.Int64()
	if err != nil {
		return fmt.Errorf("a token count is not a whole number: %s", n)
	}
	*c = count(v)
	return nil
}

// add returns a+b, or an error when the sum overflows the ledger's limit.
func add(a, b count) (int64, error) {
	if a < 0 || b < 0 || int64(a) > math.MaxInt64-int64(b) || int64(a)+int64(b) > tokenledger.MaxTokens {
		return 0, fmt.Errorf("the response's token counts %d and %d do not add up to a count from 0 to %d", a, b, int64(tokenledger.MaxTokens))
	}
	return int64(a) + int64(b), nil
}

// Response reads a whole (not streamed) response body of kind k.
func Response(k Kind, body []byte) (Usage, error) {
	switch k {
	case OpenAI:
		return openAIResponse(body)
	case Anthropic:
		return anthropicResponse(body)
	case Gemini:
		return geminiResponse(body)
	}
	return Usage{}, fmt.Errorf("unknown provider kind %q", k)
}

// Body reads what an app captured from a call of kind k: a whole
// response (a JSON object), the list of its stream events (a JSON array
// of objects), or the stream's server-sent-event text.
func Body(k Kind, body []byte) (Usage, error) {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return Usage{}, noUsagef("the body is empty")
	case trimmed[0] == '{':
		return Response(k, trimmed)
	case trimmed[0] == '[':
		var events []json.RawMessage
		if err := json.Unmarshal(trimmed, &events); err != nil {
			return Usage{}, errors.New("the body is not a JSON array of stream events")
		}
		s := NewStream(k)
		for _, e := range events {
			s.Data(e)
		}
		return s.Usage()
	}
	s := NewStream(k)
	p := SSEParser{OnData: s.Data}
	p.Write(body)
	p.Close()
	return s.Usage()
}
