package tokenledger_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

func TestDecodeEventsForms(t *testing.T) {
	one := `{"model":"gpt-4o","promptTokens":10,"completionTokens":5}`
	tests := []struct {
		name string
		body string
		want int
	}{
		{"single object", one, 1},
		{"array", "[" + one + "," + one + "]", 2},
		{"events wrapper", `{"events":[` + one + `,` + one + `,` + one + `]}`, 3},
		{"surrounding whitespace", "\n  " + one + "\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tokenledger.DecodeEvents([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("got %d events, want %d", len(got), tc.want)
			}
			if got[0].TotalTokens != 15 || got[0].Model != "gpt-4o" {
				t.Errorf("event = %+v, want model gpt-4o and totalTokens 15", got[0])
			}
		})
	}
}

func TestDecodeEventFields(t *testing.T) {
	body := `{"id":"abc-1","timestamp":"2026-11-27T10:00:00.5+01:00","model":"  claude  ","provider":"anthropic",
	"userId":"u1","sessionId":"s1","promptTokens":100,"completionTokens":50,"cacheReadTokens":30,
	"cacheWriteTokens":20,"reasoningTokens":10,"totalTokens":200,"costUsd":0.0012345678915,
	"metadata":{ "a" : [1, 2] }}`
	got, err := tokenledger.DecodeEvents([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	e := got[0]
	want := tokenledger.Event{
		ID: "abc-1", Timestamp: time.Date(2026, 11, 27, 9, 0, 0, 500_000_000, time.UTC),
		Model: "claude", Provider: "anthropic", UserID: "u1", SessionID: "s1",
		PromptTokens: 100, CompletionTokens: 50, CacheReadTokens: 30, CacheWriteTokens: 20,
		ReasoningTokens: 10, TotalTokens: 200, Cost: 1_234_568, Pricing: tokenledger.PricedByClient,
	}
	if string(e.Metadata) != `{"a":[1,2]}` {
		t.Errorf("metadata = %s, want compacted object", e.Metadata)
	}
	e.Metadata = nil
	if !e.Timestamp.Equal(want.Timestamp) || e.Timestamp.Location() != time.UTC {
		t.Errorf("timestamp = %v, want %v in UTC", e.Timestamp, want.Timestamp)
	}
	e.Timestamp = want.Timestamp
	if e = tokenledger.WithoutDecoderMarks(e); !reflect.DeepEqual(e, want) {
		t.Errorf("event:\n got  %+v\n want %+v", e, want)
	}
}

func TestDecodeOriginalForm(t *testing.T) {
	tests := []struct {
		tokenType     string
		prompt, compl int64
		total         int64
	}{
		{"prompt", 42, 0, 42},
		{"completion", 0, 42, 42},
		{"total", 0, 0, 42},
	}
	for _, tc := range tests {
		t.Run(tc.tokenType, func(t *testing.T) {
			got, err := tokenledger.DecodeEvents([]byte(`{"model":"m","tokensUsed":42,"tokenType":"` + tc.tokenType + `"}`))
			if err != nil {
				t.Fatal(err)
			}
			e := got[0]
			if e.PromptTokens != tc.prompt || e.CompletionTokens != tc.compl || e.TotalTokens != tc.total {
				t.Errorf("got prompt %d completion %d total %d, want %d %d %d", e.PromptTokens, e.CompletionTokens, e.TotalTokens, tc.prompt, tc.compl, tc.total)
			}
		})
	}
}

func TestDecodeEventsRejects(t *testing.T) {
	tests := []struct {
		name, body string
		index      int
		field      string
		msg        string // a part of the message
	}{
		{"empty body", ``, -1, "", "the body is empty"},
		{"broken JSON", `{"model":"m",`, -1, "", "not valid JSON"},
		{"not an object", `"hello"`, -1, "", "must be a JSON object or array"},
		{"two values", `{"model":"m"} {"model":"m"}`, -1, "", "more than one JSON value"},
		{"invalid UTF-8", "{\"model\":\"m\xff\"}", -1, "", "not valid UTF-8"},
		{"unknown field", `{"model":"m","promptToken":5}`, -1, "promptToken", "is not a known field"},
		{"field names are exact", `{"Model":"m"}`, -1, "Model", "is not a known field"},
		{"duplicate key", `{"model":"m","model":"n"}`, -1, "model", "appears more than once"},
		{"missing model", `{"promptTokens":5}`, -1, "model", "is required"},
		{"blank model", `{"model":"   "}`, -1, "model", "is required"},
		{"model too long", `{"model":"` + strings.Repeat("x", 201) + `"}`, -1, "model", "at most 200"},
		{"control character", `{"model":"a\u0007b"}`, -1, "model", "control characters"},
		{"model not a string", `{"model":5}`, -1, "model", "must be a string"},
		{"negative tokens", `{"model":"m","promptTokens":-1}`, -1, "promptTokens", "integer from 0"},
		{"huge tokens", `{"model":"m","promptTokens":1099511627777}`, -1, "promptTokens", "integer from 0"},
		{"beyond int64", `{"model":"m","completionTokens":99999999999999999999999}`, -1, "completionTokens", "integer from 0"},
		{"fractional tokens", `{"model":"m","promptTokens":1.5}`, -1, "promptTokens", "integer from 0"},
		{"leading zero", `{"model":"m","promptTokens":05}`, -1, "", "not valid JSON"},
		{"exponent tokens", `{"model":"m","promptTokens":1e3}`, -1, "promptTokens", "integer from 0"},
		{"sixteen digits", `{"model":"m","promptTokens":9999999999999999}`, -1, "promptTokens", "integer from 0"},
		{"seventeen digits", `{"model":"m","promptTokens":10000000000000000}`, -1, "promptTokens", "integer from 0"},
		{"tokens as string", `{"model":"m","promptTokens":"5"}`, -1, "promptTokens", "integer from 0"},
		{"total too small", `{"model":"m","promptTokens":5,"completionTokens":5,"totalTokens":9}`, -1, "totalTokens", "must not be smaller"},
		{"cache exceeds prompt", `{"model":"m","promptTokens":5,"cacheReadTokens":4,"cacheWriteTokens":2}`, -1, "cacheReadTokens", "must not exceed promptTokens"},
		{"reasoning exceeds completion", `{"model":"m","completionTokens":5,"reasoningTokens":6}`, -1, "reasoningTokens", "must not exceed completionTokens"},
		{"tokensUsed with split", `{"model":"m","tokensUsed":5,"tokenType":"prompt","promptTokens":5}`, -1, "tokensUsed", "cannot be combined"},
		{"tokensUsed without type", `{"model":"m","tokensUsed":5}`, -1, "tokenType", "is required"},
		{"bad tokenType", `{"model":"m","tokensUsed":5,"tokenType":"input"}`, -1, "tokenType", "prompt, completion or total"},
		{"tokenType alone", `{"model":"m","tokenType":"prompt"}`, -1, "tokenType", "only allowed"},
		{"bad timestamp", `{"model":"m","timestamp":"yesterday"}`, -1, "timestamp", "RFC 3339"},
		{"empty id", `{"model":"m","id":""}`, -1, "id", "must be 1 to 128 characters"},
		{"empty timestamp", `{"model":"m","timestamp":""}`, -1, "timestamp", "not an empty string"},
		{"empty tokenType", `{"model":"m","tokenType":""}`, -1, "tokenType", "not an empty string"},
		{"empty tokenType with tokensUsed", `{"model":"m","tokensUsed":5,"tokenType":""}`, -1, "tokenType", "not an empty string"},
		{"empty id in a batch", `[{"model":"m"},{"model":"m","id":""}]`, 1, "id", "must be 1 to 128 characters"},
		{"negative cost", `{"model":"m","costUsd":-0.5}`, -1, "costUsd", "negative"},
		{"cost as string", `{"model":"m","costUsd":"0.5"}`, -1, "costUsd", "decimal number"},
		{"cost too large", `{"model":"m","costUsd":1e300}`, -1, "costUsd", "must not exceed"},
		{"metadata not an object", `{"model":"m","metadata":[1]}`, -1, "metadata", "JSON object"},
		{"metadata too large", `{"model":"m","metadata":{"a":"` + strings.Repeat("x", 4100) + `"}}`, -1, "metadata", "4096 bytes"},
		{"id with space", `{"model":"m","id":"a b"}`, -1, "id", "printable ASCII"},
		{"id too long", `{"model":"m","id":"` + strings.Repeat("x", 129) + `"}`, -1, "id", "1 to 128"},
		{"bad event in batch", `[{"model":"m"},{"model":"m","promptTokens":-3}]`, 1, "promptTokens", "integer from 0"},
		{"non-object in batch", `[{"model":"m"}, 7]`, 1, "", "must be a JSON object"},
		{"empty batch", `[]`, -1, "", "no events"},
		{"empty wrapper", `{"events":[]}`, -1, "", "no events"},
		{"wrapper not an array", `{"events":{}}`, -1, "events", "array of events"},
		{"batch too large", "[" + strings.Repeat(`{"model":"m"},`, 1000) + `{"model":"m"}]`, -1, "", "at most 1000 events"},
	}
	svc, _ := newService(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A body is refused by the decoder (its shape) or by the
			// Service's rules, each checked once.
			got, err := tokenledger.DecodeEvents([]byte(tc.body))
			if err != nil && got != nil {
				t.Errorf("returned events with an error: %+v", got)
			}
			if err == nil {
				_, err = svc.ValidateAndPrice(got)
			}
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !errors.Is(err, tokenledger.ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			var ve *tokenledger.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *ValidationError", err)
			}
			if ve.Index != tc.index || ve.Field != tc.field {
				t.Errorf("index %d field %q, want %d %q", ve.Index, ve.Field, tc.index, tc.field)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err.Error(), tc.msg)
			}
		})
	}
}

func TestDecodeNullMeansAbsent(t *testing.T) {
	got, err := tokenledger.DecodeEvents([]byte(`{"model":"m","userId":null,"promptTokens":null,"costUsd":null,"metadata":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if e := got[0]; e.UserID != "" || e.PromptTokens != 0 || e.Cost != 0 || e.Metadata != nil {
		t.Errorf("nulls were not treated as absent: %+v", e)
	}
}

func TestBatchOfExactlyMax(t *testing.T) {
	body := "[" + strings.Repeat(`{"model":"m"},`, tokenledger.MaxBatch-1) + `{"model":"m"}]`
	got, err := tokenledger.DecodeEvents([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != tokenledger.MaxBatch {
		t.Errorf("got %d events, want %d", len(got), tokenledger.MaxBatch)
	}
}
