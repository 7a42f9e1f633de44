package capture

import (
	"cmp"
	"encoding/json"
	"fmt"
)

// geminiBody is a GenerateContentResponse, whole or one streamed chunk.
type geminiBody struct {
	ResponseID    string `json:"responseId"`
	ModelVersion  string `json:"modelVersion"`
	UsageMetadata *struct {
		PromptTokenCount        count `json:"promptTokenCount"`
		CachedContentTokenCount count `json:"cachedContentTokenCount"`
		CandidatesTokenCount    count `json:"candidatesTokenCount"`
		ThoughtsTokenCount      count `json:"thoughtsTokenCount"`
		ToolUsePromptTokenCount count `json:"toolUsePromptTokenCount"`
	} `json:"usageMetadata"`
}

// usage maps Gemini's counts: promptTokenCount includes the cached
// content, the thoughts are outside candidatesTokenCount, and a tool's
// prompt (toolUsePromptTokenCount) is input billed like the prompt.
func (b *geminiBody) usage() (Usage, error) {
	m := b.UsageMetadata
	u := Usage{ID: b.ResponseID, Model: b.ModelVersion, CacheRead: int64(m.CachedContentTokenCount), Reasoning: int64(m.ThoughtsTokenCount)}
	var err error
	if u.Prompt, err = add(m.PromptTokenCount, m.ToolUsePromptTokenCount); err != nil {
		return Usage{}, err
	}
	if u.Completion, err = add(m.CandidatesTokenCount, m.ThoughtsTokenCount); err != nil {
		return Usage{}, err
	}
	return u, u.check()
}

func geminiResponse(body []byte) (Usage, error) {
	var b geminiBody
	if err := json.Unmarshal(body, &b); err != nil {
		return Usage{}, fmt.Errorf("the body is not a Gemini response: %v", err)
	}
	if b.UsageMetadata == nil {
		return Usage{}, noUsagef("the Gemini response has no usageMetadata")
	}
	return b.usage()
}

// geminiData folds one streamed chunk into s. Every chunk may carry the
// usage so far; the last one's is the call's.
func (s *Stream) geminiData(data []byte) error {
	var b geminiBody
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	s.id, s.model = cmp.Or(s.id, b.ResponseID), cmp.Or(s.model, b.ModelVersion)
	if b.UsageMetadata == nil {
		return nil
	}
	b.ResponseID, b.ModelVersion = s.id, s.model
	return s.set(b.usage())
}
