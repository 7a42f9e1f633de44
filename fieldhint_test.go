package tokenledger_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
)

// TestUnknownFieldSaysWhatWasMeant: a provider's names, another spelling
// of an event field and a small typo get "did you mean"; a provider's
// usage object (a whole response sent) says how to send it instead.
func TestUnknownFieldSaysWhatWasMeant(t *testing.T) {
	const capture = "is not a known field: send a provider's usage as the event's own fields (promptTokens, completionTokens, …; see docs/api.md), or POST the whole response to /api/capture/{provider} (see docs/capture.md)"
	for _, tc := range []struct{ body, field, want string }{
		{`{"model":"gpt-4o","prompt_tokens":5,"completion_tokens":3}`, "completion_tokens", "did you mean completionTokens?"},
		{`{"model":"gpt-4o","prompt_tokens":5}`, "prompt_tokens", "did you mean promptTokens?"},
		{`{"model":"m","total_tokens":5}`, "total_tokens", "did you mean totalTokens?"},
		{`{"model":"m","input_tokens":5}`, "input_tokens", "did you mean promptTokens?"},
		{`{"model":"m","output_tokens":5}`, "output_tokens", "did you mean completionTokens?"},
		{`{"model":"m","cache_creation_input_tokens":5}`, "cache_creation_input_tokens", "did you mean cacheWriteTokens?"},
		{`{"model":"m","promtTokens":5}`, "promtTokens", "did you mean promptTokens?"},
		{`{"Model":"m"}`, "Model", "did you mean model?"},
		{`{"model":"m","user_id":"ada"}`, "user_id", "did you mean userId?"},
		{`{"model":"m","user":"ada"}`, "user", "did you mean userId?"},
		// An OpenAI response sent whole: its usage object is named, not
		// the first of its other fields.
		{`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}`, "usage", capture},
		{`[{"model":"m"},{"model":"m","usageMetadata":{}}]`, "usageMetadata", capture},
		{`{"model":"m","colour":"red"}`, "colour", "is not a known field (see docs/api.md)"},
		{`{"model":"m","xyz":1}`, "xyz", "is not a known field (see docs/api.md)"},
	} {
		_, err := tokenledger.DecodeEvents([]byte(tc.body))
		var ve *tokenledger.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || !strings.Contains(ve.Msg, tc.want) {
			t.Errorf("%s: %v (field %q), want field %q and %q", tc.body, err, fieldOf(ve), tc.field, tc.want)
		}
	}
}

func fieldOf(ve *tokenledger.ValidationError) string {
	if ve == nil {
		return ""
	}
	return ve.Field
}
