package capture

import (
	"encoding/json"
	"fmt"
)

// anthropicUsage is a Messages API usage object. Its input_tokens leaves
// out both cache fields, so the ledger's prompt is their sum.
type anthropicUsage struct {
	InputTokens              count `json:"input_tokens"`
	CacheReadInputTokens     count `json:"cache_read_input_tokens"`
	CacheCreationInputTokens count `json:"cache_creation_input_tokens"`
	OutputTokens             count `json:"output_tokens"`
}

type anthropicMessage struct {
	ID    string          `json:"id"`
	Type  string          `json:"type"`
	Model string          `json:"model"`
	Usage *anthropicUsage `json:"usage"`
}

// input returns the ledger's prompt, cache read and cache write counts.
func (u *anthropicUsage) input() (prompt, read, write int64, err error) {
	withRead, err := add(u.InputTokens, u.CacheReadInputTokens)
	if err != nil {
		return 0, 0, 0, err
	}
	prompt, err = add(count(withRead), u.CacheCreationInputTokens)
	return prompt, int64(u.CacheReadInputTokens), int64(u.CacheCreationInputTokens), err
}

func anthropicResponse(body []byte) (Usage, error) {
	var m anthropicMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return Usage{}, fmt.Errorf("the body is not an Anthropic message: %v", err)
	}
	if m.Usage == nil {
		return Usage{}, noUsagef("the Anthropic response has no usage object")
	}
	u := Usage{ID: m.ID, Model: m.Model, Completion: int64(m.Usage.OutputTokens)}
	var err error
	if u.Prompt, u.CacheRead, u.CacheWrite, err = m.Usage.input(); err != nil {
		return Usage{}, err
	}
	return u, u.check()
}

// anthropicEvent is one streamed Messages API event.
type anthropicEvent struct {
	Type    string            `json:"type"`
	Message *anthropicMessage `json:"message"`
	Usage   *anthropicUsage   `json:"usage"`
}

// anthropicData folds one streamed event into s: message_start gives the
// id, the model and the input and cache counts; each message_delta the
// output count so far (cumulative: the last one is the call's).
func (s *Stream) anthropicData(data []byte) error {
	var e anthropicEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return err
	}
	switch {
	case e.Type == "message_start" && e.Message != nil:
		s.id, s.model = e.Message.ID, e.Message.Model
		if e.Message.Usage != nil {
			u := Usage{ID: s.id, Model: s.model, Completion: int64(e.Message.Usage.OutputTokens)}
			var err error
			if u.Prompt, u.CacheRead, u.CacheWrite, err = e.Message.Usage.input(); err != nil {
				return err
			}
			s.started = &u
		}
	case e.Type == "message_delta" && e.Usage != nil:
		if s.started == nil {
			return fmt.Errorf("a message_delta came before message_start")
		}
		u := *s.started
		u.Completion = int64(e.Usage.OutputTokens)
		return s.set(u, u.check())
	}
	return nil
}
