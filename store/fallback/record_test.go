package fallback

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// TestRecordKeepsPriceSource: a spooled event is delivered with the source
// of its cost, so the database counts it as the Service priced it; a
// record of the version before pricing reads as not known, and a source
// tokenledger does not know is refused.
func TestRecordKeepsPriceSource(t *testing.T) {
	ts := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var evs []tokenledger.Event
	for _, src := range []tokenledger.PriceSource{tokenledger.PriceUnknown, tokenledger.PricedByClient, tokenledger.PricedByTable, tokenledger.Unpriced} {
		evs = append(evs, tokenledger.Event{ID: "e" + src.String(), Timestamp: ts, Model: "m", PromptTokens: 1, TotalTokens: 1, Cost: 5, Pricing: src})
	}
	b, err := encodeRecord(ts, evs)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range r.Events {
		if e.Pricing != evs[i].Pricing || e.Cost != 5 {
			t.Errorf("event %d: pricing %v cost %s, want %v and 0.000000005", i, e.Pricing, e.Cost, evs[i].Pricing)
		}
	}
	old := `[{"id":"a","timestamp":"2026-12-06T12:00:00Z","model":"m","promptTokens":1,"completionTokens":0,"totalTokens":1}]`
	if r, err := decodeRecord([]byte(old)); err != nil || r.Events[0].Pricing != tokenledger.PriceUnknown {
		t.Errorf("old record: %+v, %v", r, err)
	}
	bad := strings.Replace(old, `"totalTokens":1`, `"totalTokens":1,"pricing":"free"`, 1)
	if _, err := decodeRecord([]byte(bad)); err == nil {
		t.Error("a record with an unknown price source was read")
	}
}
