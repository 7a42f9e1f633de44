package tokenledger_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tokenledger/tokenledger"
)

// FuzzDecodeEvents feeds arbitrary bodies to the request decoder. It must
// never panic; it either returns valid events or a *ValidationError, and
// every event it returns passes Validate and re-encodes to JSON.
func FuzzDecodeEvents(f *testing.F) {
	for _, seed := range []string{
		`{"model":"gpt-4o","promptTokens":10,"completionTokens":5}`,
		`[{"model":"a","tokensUsed":5,"tokenType":"total"},{"model":"b","costUsd":1.5e-3}]`,
		`{"events":[{"model":"m","userId":"u","sessionId":"s","metadata":{"k":[1,{"x":null}]}}]}`,
		`{"id":"x","timestamp":"2026-11-27T12:00:00Z","model":"m","cacheReadTokens":1,"promptTokens":2,"reasoningTokens":1,"completionTokens":1,"totalTokens":9}`,
		`{"model":"m","model":"n"}`,
		`[1,2,3]`, `{`, ``, `null`, `{"events":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := tokenledger.DecodeEvents(body)
		if err != nil {
			var ve *tokenledger.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, not a *ValidationError: %v", err, err)
			}
			if events != nil {
				t.Fatalf("events returned with an error")
			}
			if ve.Error() == "" {
				t.Fatalf("empty error message")
			}
			return
		}
		if len(events) == 0 || len(events) > tokenledger.MaxBatch {
			t.Fatalf("decoded %d events", len(events))
		}
		for i := range events {
			if err := events[i].Validate(); err != nil {
				t.Fatalf("decoded event %d does not validate: %v", i, err)
			}
			if events[i].TotalTokens < events[i].PromptTokens+events[i].CompletionTokens {
				t.Fatalf("event %d: total below prompt + completion", i)
			}
			if _, err := json.Marshal(events[i]); err != nil {
				t.Fatalf("event %d does not encode: %v", i, err)
			}
		}
	})
}

// FuzzParseDollars checks that any accepted cost round-trips through its
// decimal form.
func FuzzParseDollars(f *testing.F) {
	for _, s := range []string{"0", "0.1", "1e-9", "2.5E+3", "1000000", "0.0000000005"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := tokenledger.ParseDollars(s)
		if err != nil {
			return
		}
		if n < 0 || n > tokenledger.MaxEventCost {
			t.Fatalf("ParseDollars(%q) = %d, out of bounds", s, n)
		}
		back, err := tokenledger.ParseDollars(n.String())
		if err != nil || back != n {
			t.Fatalf("round trip of %q: %d → %q → %d, %v", s, n, n.String(), back, err)
		}
	})
}
