package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/pricing"
)

// pricedModels are real keys of the shipped table: OpenAI with cached
// input, Anthropic with cache writes, Gemini with reasoning and a 200k
// tier, OpenAI's 272k tier, and DeepSeek's sub-nano-dollar cache rate.
var pricedModels = []string{"gpt-4o", "gpt-4o-mini", "o3", "claude-sonnet-4-5", "claude-opus-4-5",
	"gemini-2.5-flash", "gemini-2.5-pro", "gpt-5.4", "deepseek-v4-pro", "grok-4.3"}

// testPricedCostExact: 10,000 random events priced by the shipped table
// (some unknown, some with the client's cost) sum, per day and per model,
// to exactly the sum of their costs worked out here with big.Rat from the
// file's text, and the store counts each request under its price source.
func testPricedCostExact(t *testing.T, newStore Factory) {
	now := suiteNow()
	clock := func() time.Time { return now }
	st := newStore(t, Options{Now: clock, RetentionDays: tokenledger.DefaultRetentionDays})
	t.Cleanup(func() { _ = st.Close() })
	table, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := tokenledger.NewService(tokenledger.Config{Store: st, Now: clock, Logger: discard, Prices: table})
	if err != nil {
		t.Fatal(err)
	}
	oracle := loadOracle(t)
	rng := rand.New(rand.NewPCG(14, 15))
	type sums struct {
		cost    *big.Rat
		pricing tokenledger.PricingCounts
	}
	want := map[string]*sums{"": {cost: new(big.Rat)}} // "" is the day
	const n = 10_000
	evs := make([]tokenledger.Event, 0, 500)
	for i := range n {
		e := randomEvent(rng, i, now)
		var cost *big.Rat
		var src tokenledger.PriceSource
		switch {
		case e.Pricing == tokenledger.PricedByClient:
			cost, src = new(big.Rat).SetFrac64(int64(e.Cost), tokenledger.NanosPerDollar), tokenledger.PricedByClient
		case oracle[e.Model] == nil:
			cost, src = new(big.Rat), tokenledger.Unpriced
		default:
			cost, src = oracle.cost(&e), tokenledger.PricedByTable
		}
		for _, k := range []string{"", e.Model} {
			s := want[k]
			if s == nil {
				s = &sums{cost: new(big.Rat)}
				want[k] = s
			}
			s.cost.Add(s.cost, cost)
			s.pricing.Count(src)
		}
		if evs = append(evs, e); len(evs) == cap(evs) || i == n-1 {
			if _, err := svc.Log(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	today := tokenledger.DateOf(now)
	day, ok := readAll(t, st, today, today, false)[today]
	if !ok {
		t.Fatal("no day stored")
	}
	check := func(what string, got tokenledger.Nanos, gotP tokenledger.PricingCounts, w *sums) {
		if wn := new(big.Rat).SetFrac64(int64(got), tokenledger.NanosPerDollar); wn.Cmp(w.cost) != 0 {
			t.Errorf("%s: cost %s, want %s dollars", what, got, w.cost.FloatString(9))
		}
		if gotP != w.pricing {
			t.Errorf("%s: pricing %+v, want %+v", what, gotP, w.pricing)
		}
	}
	check("day", day.Cost, day.Pricing, want[""])
	for name, w := range want {
		if name != "" {
			m := day.Models[name]
			check("model "+name, m.Cost, m.Pricing, w)
		}
	}
}

// randomEvent returns event i: a priced model (one in eight above 200k
// input tokens), an unknown model, or a client's own cost.
func randomEvent(rng *rand.Rand, i int, now time.Time) tokenledger.Event {
	e := tokenledger.Event{ID: fmt.Sprintf("priced-%d", i), Timestamp: now, Model: pricedModels[rng.IntN(len(pricedModels))]}
	e.PromptTokens = rng.Int64N(20_000)
	if rng.IntN(8) == 0 {
		e.PromptTokens = 200_000 + rng.Int64N(150_000)
	}
	e.CacheReadTokens = rng.Int64N(e.PromptTokens + 1)
	e.CacheWriteTokens = rng.Int64N(e.PromptTokens - e.CacheReadTokens + 1)
	e.CompletionTokens = rng.Int64N(5_000)
	e.ReasoningTokens = rng.Int64N(e.CompletionTokens + 1)
	e.TotalTokens = e.PromptTokens + e.CompletionTokens
	switch rng.IntN(10) {
	case 0:
		e.Model = fmt.Sprintf("local-model-%d", rng.IntN(3))
	case 1:
		e.Cost, e.Pricing = tokenledger.Nanos(rng.Int64N(50_000_000)), tokenledger.PricedByClient
	}
	return e
}

// oracleModel holds one model's rate fields as exact fractions.
type oracleModel map[string]*big.Rat

// oracle prices events from the shipped file's text, independently of
// package pricing: the contract's buckets, tiers and fallbacks.
type oracle map[string]oracleModel

// loadOracle reads the shipped price file (beside package pricing).
func loadOracle(t *testing.T) oracle {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "pricing", "data", "model_prices_and_context_window.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	o := oracle{}
	for _, name := range pricedModels {
		m := oracleModel{}
		for f, v := range raw[name] {
			if num, ok := v.(json.Number); ok {
				r, ok := new(big.Rat).SetString(string(num))
				if !ok {
					t.Fatalf("%s %s: %s", name, f, num)
				}
				m[f] = r
			}
		}
		o[name] = m
	}
	return o
}

// cost returns e's cost in dollars, rounded half up to the nano-dollar.
func (o oracle) cost(e *tokenledger.Event) *big.Rat {
	m := o[e.Model]
	tier := ""
	for _, k := range []string{"272k", "200k"} {
		limit := map[string]int64{"272k": 272_000, "200k": 200_000}[k]
		if e.PromptTokens > limit && m["input_cost_per_token_above_"+k+"_tokens"] != nil {
			tier = "_above_" + k + "_tokens"
			break
		}
	}
	rate := func(field, fallback string) *big.Rat {
		for _, f := range []string{field + tier, field, fallback + tier, fallback} {
			if r := m[f]; r != nil {
				return r
			}
		}
		panic("no rate for " + field)
	}
	sum := new(big.Rat)
	add := func(tokens int64, r *big.Rat) { sum.Add(sum, new(big.Rat).Mul(big.NewRat(tokens, 1), r)) }
	add(e.PromptTokens-e.CacheReadTokens-e.CacheWriteTokens, rate("input_cost_per_token", "input_cost_per_token"))
	add(e.CacheReadTokens, rate("cache_read_input_token_cost", "input_cost_per_token"))
	add(e.CacheWriteTokens, rate("cache_creation_input_token_cost", "input_cost_per_token"))
	add(e.CompletionTokens-e.ReasoningTokens, rate("output_cost_per_token", "output_cost_per_token"))
	add(e.ReasoningTokens, rate("output_cost_per_reasoning_token", "output_cost_per_token"))
	// Round half up to the nano-dollar: floor(x·10^9 + 1/2).
	nanos := new(big.Rat).Mul(sum, big.NewRat(tokenledger.NanosPerDollar, 1))
	nanos.Add(nanos, big.NewRat(1, 2))
	q := new(big.Int).Quo(nanos.Num(), nanos.Denom())
	return new(big.Rat).SetFrac(q, big.NewInt(tokenledger.NanosPerDollar))
}
