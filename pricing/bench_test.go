package pricing

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
)

// withModels returns the built-in table grown to n models with made-up
// entries, to show the lookup does not slow with the table's size.
func withModels(b *testing.B, n int) *Table {
	tb := builtin(b)
	var sb strings.Builder
	sb.WriteString("{")
	for i := 0; tb.Len()+i < n; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"vendor%d/model-%d": {"input_cost_per_token": %d.5e-08, "output_cost_per_token": 1e-06}`, i%50, i, i%9+1)
	}
	sb.WriteString("}")
	extra, err := Parse([]byte(sb.String()), SourceFile)
	if err != nil {
		b.Fatal(err)
	}
	tb = tb.Merge(extra)
	if tb.Len() != n {
		b.Fatalf("table has %d models, want %d", tb.Len(), n)
	}
	return tb
}

// BenchmarkPrice is what pricing adds to each event on the way in: the
// lookup and the exact cost, for a model found by its key, one found
// without its date suffix, and an unknown model (every step misses).
func BenchmarkPrice(b *testing.B) {
	events := []struct {
		name string
		e    tokenledger.Event
	}{
		{"exact", tokenledger.Event{Model: "claude-sonnet-4-5", PromptTokens: 5_000, CacheReadTokens: 3_000, CacheWriteTokens: 1_000, CompletionTokens: 200}},
		{"dated", tokenledger.Event{Model: "gpt-5.6-2026-10-01", PromptTokens: 300_000, CompletionTokens: 900, ReasoningTokens: 400}},
		{"unknown", tokenledger.Event{Model: "Some-Local-Model-7B", Provider: "ollama", PromptTokens: 10, CompletionTokens: 10}},
	}
	for _, n := range []int{218, 5_000} {
		tb := withModels(b, n)
		for _, ev := range events {
			b.Run(fmt.Sprintf("models=%d/%s", n, ev.name), func(b *testing.B) {
				e := ev.e
				b.ReportAllocs()
				for b.Loop() {
					if _, _, _, err := tb.Price(&e); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// nopStore satisfies tokenledger.Store for a Service that only prepares.
type nopStore struct{ tokenledger.Store }

// BenchmarkDecodePrepare is the whole way in for one event without and
// with the price table (218 and 5,000 models): DecodeEvents then
// Service.ValidateAndPrice. The difference is what pricing adds to an event.
func BenchmarkDecodePrepare(b *testing.B) {
	body := []byte(`{"id":"bench-1","model":"claude-sonnet-4-5-20250929","provider":"anthropic","userId":"u42","sessionId":"s17","promptTokens":5000,"cacheReadTokens":3000,"cacheWriteTokens":1000,"completionTokens":200}`)
	for _, c := range []struct {
		name   string
		prices tokenledger.Pricer
	}{{"prices=none", nil}, {"prices=218", withModels(b, 218)}, {"prices=5000", withModels(b, 5_000)}} {
		svc, err := tokenledger.NewService(tokenledger.Config{Store: nopStore{}, Prices: c.prices})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				evs, err := tokenledger.DecodeEvents(body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := svc.ValidateAndPrice(evs); err != nil {
					b.Fatal(err)
				}
				if c.prices != nil && evs[0].Pricing != tokenledger.PricedByTable {
					b.Fatalf("event priced by %v, want the table", evs[0].Pricing)
				}
			}
		})
	}
}
