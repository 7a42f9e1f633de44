package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/capture"
	"github.com/tokenledger/tokenledger/internal/httpapi"
)

const captureUsage = `Usage: tokenledger capture --provider openai|anthropic|gemini [--user ID] [--session ID] < response

Reads a provider's response from standard input — the response JSON, the
JSON array of its stream's events, or the stream's text/event-stream text
— and logs its usage as one event, as POST /api/capture/{provider} does
(docs/capture.md). OpenAI-compatible servers (Groq, vLLM, Ollama, …) are
--provider openai.
`

// runCapture is tokenledger capture.
func runCapture(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("capture")
	verboseFlag(fs, &e)
	provider := fs.String("provider", "", "the response's `shape`: openai, anthropic or gemini (required)")
	user := fs.String("user", "", "the user's `id`")
	session := fs.String("session", "", "the session's `id`")
	asJSON := fs.Bool("json", false, "print the result as JSON, as POST /api/capture answers")
	if err := parseFlags(fs, args, captureUsage, e.stdout, "user", "session"); err != nil {
		return err
	}
	if *provider == "" {
		return usagef("capture: --provider is required (openai, anthropic or gemini)")
	}
	kind, err := capture.ParseKind(*provider)
	if err != nil {
		return usagef("capture: --provider: %s", err)
	}
	body, err := io.ReadAll(io.LimitReader(e.stdin, httpapi.MaxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if len(body) > httpapi.MaxBodyBytes {
		return usagef("capture: the input is larger than 1 MiB (%d bytes)", httpapi.MaxBodyBytes)
	}
	u, err := capture.Body(kind, body)
	if err != nil {
		if errors.Is(err, capture.ErrNoUsage) {
			return usagef("capture: nothing was logged: %s", err)
		}
		return usagef("capture: %s", err)
	}
	ev := u.Event(string(kind))
	ev.UserID, ev.SessionID = *user, *session
	return logEvents(ctx, e, "capture", []tokenledger.Event{ev}, *asJSON, false)
}
