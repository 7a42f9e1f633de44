package tokenledger_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokenledger/tokenledger"
)

// FuzzDecodeEvents feeds arbitrary bodies to the request decoder. It must
// never panic; it either returns events or a *ValidationError, and every
// event it returns either breaks a rule with a *ValidationError (for
// ValidateAndPrice to refuse) or passes Validate and re-encodes to JSON.
func FuzzDecodeEvents(f *testing.F) {
	for _, seed := range []string{
		`{"model":"gpt-4o","promptTokens":10,"completionTokens":5}`,
		`[{"model":"a","tokensUsed":5,"tokenType":"total"},{"model":"b","costUsd":1.5e-3}]`,
		`{"events":[{"model":"m","userId":"u","sessionId":"s","metadata":{"k":[1,{"x":null}]}}]}`,
		`{"id":"x","timestamp":"2026-11-27T12:00:00Z","model":"m","cacheReadTokens":1,"promptTokens":2,"reasoningTokens":1,"completionTokens":1,"totalTokens":9}`,
		`{"model":"m","model":"n"}`,
		`[1,2,3]`, `{`, ``, `null`, `{"events":null}`,
		`{"model":"m","userId":"\ud800"}`, `{"model":"m","userId":"\ud83d\ude00","sessionId":"\ufffd"}`,
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
		// U+FFFD comes only from the body: a lone surrogate escape is
		// refused, not replaced.
		sentFFFD := bytes.Contains(body, []byte("\ufffd")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		for i := range events {
			// The decoder checks shapes; the contract's rules are
			// ValidateAndPrice's, which refuses with a *ValidationError.
			if err := events[i].Validate(); err != nil {
				var ve *tokenledger.ValidationError
				if !errors.As(err, &ve) || ve.Error() == "" {
					t.Fatalf("decoded event %d breaks a rule without a *ValidationError: %v", i, err)
				}
				continue
			}
			if events[i].TotalTokens < events[i].PromptTokens+events[i].CompletionTokens {
				t.Fatalf("event %d: total below prompt + completion", i)
			}
			e := events[i]
			if !sentFFFD && strings.ContainsRune(e.ID+e.Model+e.Provider+e.UserID+e.SessionID, utf8.RuneError) {
				t.Fatalf("event %d holds U+FFFD that the body did not: %+v", i, e)
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

// TestLongCostIsRefused: a cost longer than MaxCostChars is refused before
// it is parsed (big.Rat took seconds of CPU on a 1 MiB number), with a
// sentence; one just within the bound still parses.
func TestLongCostIsRefused(t *testing.T) {
	long := "1" + strings.Repeat("0", 1<<20)
	if _, err := tokenledger.ParseDollars(long); err == nil || err.Error() != "must be written in at most 64 characters" {
		t.Errorf("ParseDollars(1 MiB of digits) = %v", err)
	}
	_, err := tokenledger.DecodeEvents([]byte(`{"model":"m","costUsd":0.` + strings.Repeat("1", 1<<20) + `}`))
	if err == nil || err.Error() != "costUsd must be written in at most 64 characters" {
		t.Errorf("DecodeEvents with a 1 MiB cost: %v", err)
	}
	within := "0." + strings.Repeat("0", tokenledger.MaxCostChars-3) + "1"
	if n, err := tokenledger.ParseDollars(within); err != nil || n != 0 {
		t.Errorf("ParseDollars(%d characters) = %d, %v; want 0 (it rounds to nothing)", len(within), n, err)
	}
	if n, err := tokenledger.ParseDollars("0.0000000015" + strings.Repeat("0", 50)); err != nil || n != 2 {
		t.Errorf("ParseDollars(62 characters) = %d, %v; want 2", n, err)
	}
}
