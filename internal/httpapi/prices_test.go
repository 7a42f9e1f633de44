package httpapi

import (
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/pricing"
)

func withBuiltinPrices(t *testing.T) func(*Deps) {
	tb, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return func(d *Deps) { d.Prices = tb }
}

// TestPostAnswersCosts: POST /api/tokens says, per event in request order,
// what it cost and how it was priced; the day's report counts the sources.
func TestPostAnswersCosts(t *testing.T) {
	f := newFixture(t, withBuiltinPrices(t))
	a := f.post(`[{"model":"gpt-4o-2024-08-06","promptTokens":10000,"cacheReadTokens":4000,"completionTokens":500},
		{"model":"gpt-4o","promptTokens":1,"costUsd":0.5},
		{"model":"my-llama","promptTokens":10}]`)
	a.wantStatus(t, 200)
	want := `"costs":[{"costUsd":0.025,"pricing":"table","priceKey":"gpt-4o-2024-08-06"},{"costUsd":0.5,"pricing":"client"},{"costUsd":0,"pricing":"unpriced"}]`
	if !strings.Contains(a.raw, want) {
		t.Errorf("answer %s, want %s", a.raw, want)
	}
	a = f.get("?action=today")
	if got := jsonOf(t, a.body["todayUsage"].(map[string]any)["pricing"]); got != `{"client":1,"table":1,"unpriced":1}` {
		t.Errorf("today's pricing = %s", got)
	}
	if got := jsonOf(t, a.body["todayUsage"].(map[string]any)["costUsd"]); got != "0.525" {
		t.Errorf("today's cost = %s, want 0.525", got)
	}
}

func TestPrices(t *testing.T) {
	f := newFixture(t, withBuiltinPrices(t), func(d *Deps) { d.ReadKey = "rk" })
	a := f.do("GET", "/api/prices?model=gpt-4o", "", "")
	a.wantStatus(t, 401)
	a = f.do("GET", "/api/prices?model=Claude-Sonnet-4-5-20250929&provider=anthropic", "", "", "Authorization", "Bearer rk")
	a.wantStatus(t, 200)
	if a.body["key"] != "claude-sonnet-4-5-20250929" || jsonOf(t, a.body["match"]) != `["case-insensitive"]` || a.body["source"] != "built-in" {
		t.Errorf("answer %s", a.raw)
	}
	tiers := a.body["tiers"].([]any)
	if len(tiers) != 2 {
		t.Fatalf("tiers = %s, want the base tier and the one above 200k", jsonOf(t, tiers))
	}
	// Rates are exact decimals in the answer's text, not floats.
	if want := `{"bucket":"cacheRead","usdPerToken":0.0000003,"usdPerMillion":0.3,"field":"cache_read_input_token_cost"}`; !strings.Contains(a.raw, want) {
		t.Errorf("answer %s lacks %s", a.raw, want)
	}
	if want := `"aboveTokens":200000,"rates":[{"bucket":"input","usdPerToken":0.000006,"usdPerMillion":6,"field":"input_cost_per_token_above_200k_tokens"}`; !strings.Contains(a.raw, want) {
		t.Errorf("answer %s lacks %s", a.raw, want)
	}
	for _, c := range []struct {
		query, status, msg string
	}{
		{"?model=nope", "404", `nope\": it matches no key of the price table (218 models)`},
		{"", "400", "model is required"},
		{"?model=a&model=b", "400", "model must be given at most once"},
		{"?model=a&days=3", "400", "days is not a parameter of /api/prices"},
	} {
		a := f.do("GET", "/api/prices"+c.query, "", "", "Authorization", "Bearer rk")
		if got := a.raw; !strings.Contains(got, c.msg) || !strings.HasPrefix(jsonOf(t, a.status), c.status) {
			t.Errorf("%s: %d %s, want %s with %q", c.query, a.status, got, c.status, c.msg)
		}
	}
	f.do("POST", "/api/prices?model=gpt-4o", "application/json", "{}", "Authorization", "Bearer rk").wantStatus(t, 405)
}
