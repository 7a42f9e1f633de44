package pricing_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/pricing"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// TestServicePricesEvents: the Service prices what comes without a cost,
// keeps what the client sent (an explicit 0 included), records unknown
// models as unpriced, and refuses a batch whose table cost is out of range
// without storing any of it.
func TestServicePricesEvents(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := memstore.New(clock, 90)
	table, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	dear, err := pricing.Parse([]byte(`{"dear": {"input_cost_per_token": 1, "output_cost_per_token": 1}}`), pricing.SourceFile)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := tokenledger.NewService(tokenledger.Config{Store: st, Now: clock, Prices: table.Merge(dear), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	body := `[
		{"model": "gpt-4o", "promptTokens": 10000, "cacheReadTokens": 4000, "completionTokens": 500},
		{"model": "gpt-4o", "promptTokens": 10000, "completionTokens": 500, "costUsd": 0.5},
		{"model": "gpt-4o", "promptTokens": 10000, "completionTokens": 500, "costUsd": 0},
		{"model": "my-llama", "promptTokens": 10, "completionTokens": 5}
	]`
	evs, err := tokenledger.DecodeEvents([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Log(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		cost tokenledger.Nanos
		src  tokenledger.PriceSource
		key  string
	}{{25_000_000, tokenledger.PricedByTable, "gpt-4o"}, {500_000_000, tokenledger.PricedByClient, ""},
		{0, tokenledger.PricedByClient, ""}, {0, tokenledger.Unpriced, ""}}
	for i, w := range want {
		if evs[i].Cost != w.cost || evs[i].Pricing != w.src || evs[i].PriceKey != w.key {
			t.Errorf("event %d: %s by %v (%q), want %s by %v (%q)", i, evs[i].Cost, evs[i].Pricing, evs[i].PriceKey, w.cost, w.src, w.key)
		}
	}
	d, err := svc.TodayUsage(context.Background())
	if err != nil || d == nil {
		t.Fatal(d, err)
	}
	if d.Cost != 525_000_000 || d.Pricing != (tokenledger.PricingCounts{Client: 2, Table: 1, Unpriced: 1}) {
		t.Errorf("day: cost %s pricing %+v", d.Cost, d.Pricing)
	}
	if m := d.Models["my-llama"]; m.Pricing.Unpriced != 1 || m.Cost != 0 {
		t.Errorf("my-llama: %+v", m)
	}

	// $1 a token × 2M tokens is over the contract's $1M an event.
	evs = []tokenledger.Event{{Model: "gpt-4o", PromptTokens: 1, TotalTokens: 1}, {Model: "dear", PromptTokens: 2_000_000, TotalTokens: 2_000_000}}
	_, err = svc.Log(context.Background(), evs)
	var ve *tokenledger.ValidationError
	if !errors.As(err, &ve) || ve.Index != 1 || ve.Field != "costUsd" {
		t.Fatalf("err = %v, want event 1's costUsd refused", err)
	}
	if d2, _ := svc.TodayUsage(context.Background()); d2.RequestCount != 4 {
		t.Errorf("a refused batch stored events: %d requests", d2.RequestCount)
	}
}

// TestClientCannotClaimASource: "pricing" is not a field clients send.
func TestClientCannotClaimASource(t *testing.T) {
	_, err := tokenledger.DecodeEvents([]byte(`{"model": "m", "promptTokens": 1, "pricing": "table"}`))
	if !errors.Is(err, tokenledger.ErrInvalid) {
		t.Fatalf("err = %v, want the unknown field refused", err)
	}
}
