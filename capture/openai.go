package capture

import (
	"cmp"
	"encoding/json"
	"fmt"
)

// openAIBody is the part of an OpenAI response capture reads: a Chat
// Completions object or chunk (usage.prompt_tokens…) or a Responses API
// object (usage.input_tokens…), which differ in their usage's names.
type openAIBody struct {
	ID      string           `json:"id"`
	Object  string           `json:"object"`
	Model   string           `json:"model"`
	Choices *json.RawMessage `json:"choices"`
	Usage   *openAIUsage     `json:"usage"`
}

type openAIUsage struct {
	// Chat Completions.
	PromptTokens        count `json:"prompt_tokens"`
	CompletionTokens    count `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens count `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens count `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`

	// Responses API.
	InputTokens        *count `json:"input_tokens"`
	OutputTokens       count  `json:"output_tokens"`
	InputTokensDetails struct {
		CachedTokens count `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails struct {
		ReasoningTokens count `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
}

// usage maps OpenAI's counts, in which cached tokens are part of the
// input and reasoning tokens part of the output, as the ledger's are.
func (u *openAIUsage) usage(id, model string) (Usage, error) {
	out := Usage{ID: id, Model: model}
	if u.InputTokens != nil { // Responses API
		out.Prompt, out.Completion = int64(*u.InputTokens), int64(u.OutputTokens)
		out.CacheRead, out.Reasoning = int64(u.InputTokensDetails.CachedTokens), int64(u.OutputTokensDetails.ReasoningTokens)
	} else {
		out.Prompt, out.Completion = int64(u.PromptTokens), int64(u.CompletionTokens)
		out.CacheRead, out.Reasoning = int64(u.PromptTokensDetails.CachedTokens), int64(u.CompletionTokensDetails.ReasoningTokens)
	}
	return out, out.check()
}

func openAIResponse(body []byte) (Usage, error) {
	var b openAIBody
	if err := json.Unmarshal(body, &b); err != nil {
		return Usage{}, fmt.Errorf("the body is not an OpenAI response: %v", err)
	}
	if b.Usage == nil {
		return Usage{}, noUsagef("the OpenAI response has no usage object")
	}
	return b.Usage.usage(b.ID, b.Model)
}

// openAIEvent is one streamed event: a Chat Completions chunk, or a
// Responses API event whose "response" holds the whole response.
type openAIEvent struct {
	openAIBody
	Type     string      `json:"type"`
	Response *openAIBody `json:"response"`
}

// openAIData folds one streamed event into s: a chunk's id and model,
// the usage of the chunk that has one, or the response of a Responses
// API response.completed / response.incomplete / response.failed event.
func (s *Stream) openAIData(data []byte) error {
	var e openAIEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return err
	}
	if e.Response != nil {
		s.id, s.model = cmp.Or(s.id, e.Response.ID), cmp.Or(s.model, e.Response.Model)
		switch e.Type {
		case "response.completed", "response.incomplete", "response.failed":
			if e.Response.Usage != nil {
				return s.set(e.Response.Usage.usage(e.Response.ID, e.Response.Model))
			}
		}
		return nil
	}
	s.id, s.model = cmp.Or(s.id, e.ID), cmp.Or(s.model, e.Model)
	if e.Usage != nil {
		return s.set(e.Usage.usage(s.id, s.model))
	}
	return nil
}

// IsOpenAIUsageChunk reports whether data is the extra chunk that
// stream_options.include_usage adds to a Chat Completions stream: no
// choices, a usage object.
func IsOpenAIUsageChunk(data []byte) bool {
	var b openAIBody
	if json.Unmarshal(data, &b) != nil || b.Usage == nil || b.Choices == nil {
		return false
	}
	var choices []json.RawMessage
	return json.Unmarshal(*b.Choices, &choices) == nil && len(choices) == 0
}
