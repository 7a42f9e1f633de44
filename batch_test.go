package tokenledger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// TestStoredBatchRefuses: an event read back from storage that breaks a
// rule makes no Batch, and the error names the event and the rule.
func TestStoredBatchRefuses(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.FixedZone("x", 3600))
	ok := tokenledger.Event{ID: "ok", Timestamp: at, Model: "m", PromptTokens: 1, TotalTokens: 1}
	for name, c := range map[string]struct {
		change func(*tokenledger.Event)
		msg    string
	}{
		"no id":           {func(e *tokenledger.Event) { e.ID = "" }, "event 1: id is required"},
		"no timestamp":    {func(e *tokenledger.Event) { e.Timestamp = time.Time{} }, "event 1: timestamp is required"},
		"negative tokens": {func(e *tokenledger.Event) { e.PromptTokens = -1 }, "event 1: promptTokens must be an integer"},
		"year 10000":      {func(e *tokenledger.Event) { e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "event 1: timestamp must be between the years 1 and 9999"},
		"unknown pricing": {func(e *tokenledger.Event) { e.Pricing = 9 }, "event 1: pricing must be"},
		"no model":        {func(e *tokenledger.Event) { e.Model = "" }, "event 1: model is required"},
	} {
		bad := ok
		c.change(&bad)
		b, err := tokenledger.StoredBatch([]tokenledger.Event{ok, bad})
		if !errors.Is(err, tokenledger.ErrInvalid) || !strings.HasPrefix(err.Error(), c.msg) || b.Len() != 0 {
			t.Errorf("%s: StoredBatch = %d events, %v; want none and %q", name, b.Len(), err, c.msg)
		}
	}
	b, err := tokenledger.StoredBatch([]tokenledger.Event{ok})
	if err != nil || b.Len() != 1 || b.Events()[0].Timestamp.Location() != time.UTC {
		t.Errorf("StoredBatch(valid) = %+v, %v; want the event, its timestamp in UTC", b.Events(), err)
	}
}

// TestBatchSliceAndJoin: the parts of a Batch are the events in order.
func TestBatchSliceAndJoin(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var evs []tokenledger.Event
	for _, id := range []string{"a", "b", "c"} {
		evs = append(evs, tokenledger.Event{ID: id, Timestamp: at, Model: "m"})
	}
	b, err := tokenledger.StoredBatch(evs)
	if err != nil {
		t.Fatal(err)
	}
	joined := tokenledger.JoinBatches([]tokenledger.Batch{b.Slice(2, 3), b.Slice(0, 1)})
	if got := joined.Events(); len(got) != 2 || got[0].ID != "c" || got[1].ID != "a" {
		t.Errorf("Slice(2,3)+Slice(0,1) = %+v, want c, a", got)
	}
	if got := b.Events(); got[0].ID != "a" || got[1].ID != "b" {
		t.Errorf("JoinBatches changed a batch it took from: %+v", got)
	}
}
