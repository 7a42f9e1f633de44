package pricing

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
)

func builtin(t testing.TB) *Table {
	t.Helper()
	tb, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestShippedPrices prices events of real models of the shipped file. Each
// expected cost is worked out by hand from the file's rates, in
// nano-dollars per token (rate × 10^9), in the comment beside it.
func TestShippedPrices(t *testing.T) {
	tb := builtin(t)
	cases := []struct {
		name                     string
		model, provider          string
		prompt, cr, cw, out, rsn int64
		wantKey                  string
		want                     tokenledger.Nanos
		unpriced                 bool
	}{
		// OpenAI, cached input inside promptTokens: 6000×2500 + 4000×1250 + 500×10000.
		{name: "openai cached", model: "gpt-4o", prompt: 10_000, cr: 4_000, out: 500, wantKey: "gpt-4o", want: 25_000_000},
		// A dated key the table holds itself: the same rates.
		{name: "dated key in table", model: "gpt-4o-2024-08-06", prompt: 10_000, cr: 4_000, out: 500, wantKey: "gpt-4o-2024-08-06", want: 25_000_000},
		// 234×150 + 1000×75 + 77×600.
		{name: "openai mini cached", model: "gpt-4o-mini", prompt: 1_234, cr: 1_000, out: 77, wantKey: "gpt-4o-mini", want: 156_300},
		// Anthropic read and write: 1000×3000 + 3000×300 + 1000×3750 + 200×15000.
		{name: "anthropic cache read and write", model: "claude-sonnet-4-5", prompt: 5_000, cr: 3_000, cw: 1_000, out: 200, wantKey: "claude-sonnet-4-5", want: 10_650_000},
		// Cache write at 6.25e-06: 3×6250 + 1×25000.
		{name: "anthropic write only", model: "claude-opus-4-5", prompt: 3, cw: 3, out: 1, wantKey: "claude-opus-4-5", want: 43_750},
		// Gemini reasoning outside the visible output: 1000×300 + 500×2500 + 2500×2500.
		{name: "gemini reasoning", model: "gemini-2.5-flash", prompt: 1_000, out: 3_000, rsn: 2_500, wantKey: "gemini-2.5-flash", want: 7_800_000},
		// Above 200k every bucket at the premium rate:
		// 190000×6000 + 50000×600 + 10000×7500 + 1000×22500.
		{name: "anthropic above 200k", model: "claude-sonnet-4-5", prompt: 250_000, cr: 50_000, cw: 10_000, out: 1_000, wantKey: "claude-sonnet-4-5", want: 1_267_500_000},
		// Exactly 200k does not exceed it: 200000×3000 + 1000×15000.
		{name: "anthropic at 200k", model: "claude-sonnet-4-5", prompt: 200_000, out: 1_000, wantKey: "claude-sonnet-4-5", want: 615_000_000},
		// Gemini above 200k, reasoning at the tier's output rate (no reasoning
		// rate): 200000×2500 + 100000×250 + 500×15000 + 1500×15000.
		{name: "gemini above 200k", model: "gemini-2.5-pro", prompt: 300_000, cr: 100_000, out: 2_000, rsn: 1_500, wantKey: "gemini-2.5-pro", want: 555_000_000},
		// OpenAI's 272k tier: 272001×5000 + 10×22500; at 272000 the base: 272000×2500 + 10×15000.
		{name: "openai above 272k", model: "gpt-5.4", prompt: 272_001, out: 10, wantKey: "gpt-5.4", want: 1_360_230_000},
		{name: "openai at 272k", model: "gpt-5.4", prompt: 272_000, out: 10, wantKey: "gpt-5.4", want: 680_150_000},
		// Date suffixes the table does not hold: 100×3000 + 10×15000; 10×5000 + 1×30000.
		{name: "date suffix compact", model: "claude-sonnet-4-6-20260101", prompt: 100, out: 10, wantKey: "claude-sonnet-4-6", want: 450_000},
		{name: "date suffix dashed", model: "gpt-5.6-2026-10-01", prompt: 10, out: 1, wantKey: "gpt-5.6", want: 80_000},
		// OpenRouter-style "provider/model": 1000×5000 + 100×25000.
		{name: "provider prefix", model: "anthropic/claude-opus-4-5", prompt: 1_000, out: 100, wantKey: "claude-opus-4-5", want: 7_500_000},
		// DeepSeek cache hits: 100000×280 + 900000×28 + 1000×420.
		{name: "deepseek cache", model: "deepseek-chat", prompt: 1_000_000, cr: 900_000, out: 1_000, wantKey: "deepseek-chat", want: 53_620_000},
		// Case-insensitive: 10×1250 + 10×2500.
		{name: "case-insensitive", model: "Grok-4.3", prompt: 10, out: 10, wantKey: "grok-4.3", want: 37_500},
		// OpenAI reasoning at the output rate: 500×2000 + 200×8000 + 1800×8000.
		{name: "openai reasoning", model: "o3", prompt: 500, out: 2_000, rsn: 1_800, wantKey: "o3", want: 17_000_000},
		// Half a nano-dollar rounds up once per event: 4 × 3.625 = 14.5 → 15.
		{name: "rounding half up", model: "deepseek-v4-pro", prompt: 4, cr: 4, wantKey: "deepseek-v4-pro", want: 15},
		// 2 × 3.625 = 7.25 → 7.
		{name: "rounding down", model: "deepseek-v4-pro", prompt: 2, cr: 2, wantKey: "deepseek-v4-pro", want: 7},
		{name: "unknown model", model: "my-local-llama", prompt: 100, out: 10, unpriced: true},
		// gpt-image-1 has no output token rate: its image tokens cannot be priced.
		{name: "no rate for a bucket", model: "gpt-image-1", prompt: 10, out: 10, unpriced: true},
		// ... but an event without output tokens can.  10×5000 (input 5e-06).
		{name: "bucket without tokens", model: "gpt-image-1", prompt: 10, wantKey: "gpt-image-1", want: 50_000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := tokenledger.Event{Model: c.model, Provider: c.provider, PromptTokens: c.prompt, CacheReadTokens: c.cr,
				CacheWriteTokens: c.cw, CompletionTokens: c.out, ReasoningTokens: c.rsn}
			cost, key, ok, err := tb.Price(&e)
			if err != nil {
				t.Fatal(err)
			}
			if c.unpriced {
				if ok || cost != 0 {
					t.Fatalf("priced %s by %q, want unpriced", cost, key)
				}
				return
			}
			if !ok || key != c.wantKey || cost != c.want {
				t.Fatalf("got %d nano-dollars by %q (ok %v), want %d by %q", cost, key, ok, c.want, c.wantKey)
			}
		})
	}
}

func TestLookupSteps(t *testing.T) {
	user, err := Parse([]byte(`{
		"gemini/gemini-9-pro": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
		"vertex_ai/gemini-9-pro": {"input_cost_per_token": 3e-06, "output_cost_per_token": 4e-06}
	}`), SourceFile)
	if err != nil {
		t.Fatal(err)
	}
	tb := builtin(t).Merge(user)
	cases := []struct {
		model, provider, key, how string
	}{
		{"gpt-4o", "", "gpt-4o", "exact"},
		{"gemini-9-pro", "vertex_ai", "vertex_ai/gemini-9-pro", "provider prefix"},
		{"gemini-9-pro", "gemini", "gemini/gemini-9-pro", "provider prefix"},
		{"gemini-9-pro", "", "gemini/gemini-9-pro", "provider prefix"}, // any prefix: the smaller key
		{"claude-sonnet-4-6@20260101", "", "claude-sonnet-4-6", "without date"},
		{"GPT-5.6-2026-10-01", "", "gpt-5.6", "without date,case-insensitive"},
		{"OpenAI/GPT-4o", "", "gpt-4o", "provider prefix,case-insensitive"},
	}
	for _, c := range cases {
		_, m, ok := tb.Lookup(c.model, c.provider)
		if !ok || m.Key != c.key || strings.Join(m.How, ",") != c.how {
			t.Errorf("Lookup(%q, %q) = %q %v (ok %v), want %q %s", c.model, c.provider, m.Key, m.How, ok, c.key, c.how)
		}
	}
	for _, miss := range []string{"gpt-4o-2024-13", "claude-sonnet-4-6-1999", "", "unknown-2026-01-01"} {
		if _, m, ok := tb.Lookup(miss, ""); ok {
			t.Errorf("Lookup(%q) found %q, want no match", miss, m.Key)
		}
	}
}

func TestUserFileReplacesWhole(t *testing.T) {
	user, err := Parse([]byte(`{"gpt-4o": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
		"output_cost_per_reasoning_token": 3e-06}}`), SourceFile)
	if err != nil {
		t.Fatal(err)
	}
	tb := builtin(t).Merge(user)
	// 100×1000 (cached input without a cache rate falls back to input, not
	// the built-in entry's 1.25e-06) + 10×2000 + 5×3000.
	e := tokenledger.Event{Model: "gpt-4o", PromptTokens: 100, CacheReadTokens: 40, CompletionTokens: 15, ReasoningTokens: 5}
	cost, _, ok, err := tb.Price(&e)
	if err != nil || !ok || cost != 135_000 {
		t.Fatalf("cost %d (ok %v, %v), want 135000", cost, ok, err)
	}
	if m, _, _ := tb.Lookup("gpt-4o", ""); m.Source != SourceFile {
		t.Errorf("source %q, want %q", m.Source, SourceFile)
	}
	if m, _, _ := tb.Lookup("gpt-4o-mini", ""); m == nil || m.Source != SourceBuiltin {
		t.Errorf("gpt-4o-mini should stay built-in")
	}
}

func TestExactDecimals(t *testing.T) {
	// 0.1 + 0.2 ≠ 0.3 in floats; here a rate of 1e-10 over 10^12 tokens is
	// exactly $100, and 1.6666666666666667e-07 over 3 tokens is
	// 500.0000000000000001 nano-dollars → 500.
	user, err := Parse([]byte(`{"a": {"input_cost_per_token": 1e-10, "output_cost_per_token": 1.6666666666666667e-07}}`), SourceFile)
	if err != nil {
		t.Fatal(err)
	}
	e := tokenledger.Event{Model: "a", PromptTokens: 1_000_000_000_000}
	if cost, _, ok, _ := user.Price(&e); !ok || cost != 100*tokenledger.NanosPerDollar {
		t.Errorf("cost %d, want %d", cost, 100*tokenledger.NanosPerDollar)
	}
	e = tokenledger.Event{Model: "a", CompletionTokens: 3}
	if cost, _, ok, _ := user.Price(&e); !ok || cost != 500 {
		t.Errorf("cost %d, want 500", cost)
	}
	// Beyond the 128-bit fast path: 35 decimals.
	user, err = Parse([]byte(`{"b": {"input_cost_per_token": 1.000000000000000000000000000000005e-1, "output_cost_per_token": 0}}`), SourceFile)
	if err != nil {
		t.Fatal(err)
	}
	e = tokenledger.Event{Model: "b", PromptTokens: 10}
	if cost, _, ok, _ := user.Price(&e); !ok || cost != tokenledger.NanosPerDollar {
		t.Errorf("cost %d, want %d", cost, tokenledger.NanosPerDollar)
	}
}

func TestCostAboveTheContract(t *testing.T) {
	tb, err := Parse([]byte(`{"dear": {"input_cost_per_token": 1, "output_cost_per_token": 1}}`), SourceFile)
	if err != nil {
		t.Fatal(err)
	}
	e := tokenledger.Event{Model: "dear", PromptTokens: 1_000_001}
	_, _, _, err = tb.Price(&e)
	if !errors.Is(err, tokenledger.ErrInvalid) || !strings.Contains(err.Error(), "exceeds 1000000 dollars") {
		t.Fatalf("err = %v, want a validation error about the cost", err)
	}
}

func TestMalformedFiles(t *testing.T) {
	cases := []struct{ file, want string }{
		{`[]`, "price file is not a JSON object of models (model name → rates)"},
		{`{"m": {"input_cost_per_token": -1e-06}}`, `price file: model "m": field input_cost_per_token must not be negative (it is -1e-06)`},
		{`{"m": {"input_cost_per_token": "3e-06"}}`, `price file: model "m": field input_cost_per_token must be a number of US dollars per token, not the string "3e-06"`},
		{`{"m": {"output_cost_per_token": null}}`, `price file: model "m": field output_cost_per_token must be a number of US dollars per token, not null`},
		{`{"m": 3}`, `price file: key "m" is not a model: its value must be an object of rates`},
		{`{"": {}}`, `price file: key "" is not a model name (empty, not UTF-8, or with spaces around it)`},
		{`{"m": {"input_cost_per_token_above_200k_tokens": 2}}`, `price file: model "m": field input_cost_per_token_above_200k_tokens must be at most 1 dollar per token (rates are per token, not per million tokens) (it is 2)`},
		{`{"m": {"input_cost_per_image": -0.5}}`, `price file: model "m": field input_cost_per_image must not be negative (it is -0.5)`},
		{`{"m": {"input_cost_per_token": 1e-50}}`, `price file: model "m": field input_cost_per_token must have at most 40 decimals (it is 1e-50)`},
		{`{"m": {}} {}`, "price file has data after its JSON object"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.file), SourceFile)
		if err == nil || err.Error() != c.want {
			t.Errorf("Parse(%s):\n got %v\nwant %s", c.file, err, c.want)
		}
	}
	// LiteLLM's documentation entry is not a model and is skipped.
	tb, err := Parse([]byte(`{"sample_spec": {"max_tokens": "LEGACY parameter", "input_cost_per_token": 0.0}}`), SourceFile)
	if err != nil || tb.Len() != 0 {
		t.Errorf("sample_spec: %v, %d models", err, tb.Len())
	}
}

func TestBuiltinLoads(t *testing.T) {
	tb := builtin(t)
	if tb.Len() != 218 {
		t.Errorf("built-in table has %d models, want the shipped file's 218", tb.Len())
	}
}

func TestTierFallbacks(t *testing.T) {
	// The long-context tier sets input and output only: its cache reads
	// take the model's own cache-read rate (1e-07), not the tier's input
	// rate, and its reasoning the tier's output rate.
	tb, err := Parse([]byte(`{"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "cache_read_input_token_cost": 1e-07,
		"input_cost_per_token_above_200k_tokens": 3e-06, "output_cost_per_token_above_200k_tokens": 4e-06}}`), SourceFile)
	if err != nil {
		t.Fatal(err)
	}
	// 200000×3000 + 100000×100 + 1000×3000 (writes fall back to the tier's input) + 10×4000 + 5×4000.
	e := tokenledger.Event{Model: "m", PromptTokens: 301_000, CacheReadTokens: 100_000, CacheWriteTokens: 1_000, CompletionTokens: 15, ReasoningTokens: 5}
	cost, _, ok, err := tb.Price(&e)
	if err != nil || !ok || cost != 613_060_000 {
		t.Fatalf("cost %d (ok %v, %v), want 613060000", cost, ok, err)
	}
	m, _, _ := tb.Lookup("m", "")
	got := map[string]string{}
	tiers := m.Tiers()
	if len(tiers) != 2 || tiers[0].AboveTokens != 0 || tiers[1].AboveTokens != 200_000 {
		t.Fatalf("tiers %+v, want the base tier and one above 200000", tiers)
	}
	for _, r := range tiers[1].Rates {
		got[r.Bucket] = r.Field
	}
	want := map[string]string{"input": "input_cost_per_token_above_200k_tokens", "cacheRead": "cache_read_input_token_cost",
		"cacheWrite": "input_cost_per_token_above_200k_tokens", "output": "output_cost_per_token_above_200k_tokens",
		"reasoning": "output_cost_per_token_above_200k_tokens"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("tier bucket %s from %q, want %q", k, got[k], v)
		}
	}
}
