package pricing

import (
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
)

// FuzzParse feeds hostile price files to the loader: it never panics, a
// refusal is one sentence, and a table it accepts prices any valid event
// without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"m": {"input_cost_per_token": 6.25e-08, "output_cost_per_token": 1e-05}}`))
	f.Add([]byte(`{"m": {"input_cost_per_token_above_200k_tokens": 1e-9999, "cache_read_input_token_cost": -0}}`))
	f.Add([]byte(`{"m": {"output_cost_per_reasoning_token": "x"}, "sample_spec": {}}`))
	f.Add([]byte(`{"m": {"input_cost_per_token": 1E+3}}`))
	f.Add([]byte(`{"a/b": {"input_cost_per_token": 0.00000000000000000000000000000000000001, "output_cost_per_token": 1}}`))
	f.Add(builtinJSON[:2000])
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := Parse(data, SourceFile)
		if err != nil {
			if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") || len(msg) > 600 {
				t.Fatalf("refusal is not one sentence: %q", msg)
			}
			return
		}
		for _, m := range tb.Models() {
			e := tokenledger.Event{Model: m.Key, PromptTokens: tokenledger.MaxTokens, CacheReadTokens: 3, CacheWriteTokens: 5,
				CompletionTokens: tokenledger.MaxTokens, ReasoningTokens: 7}
			if cost, _, ok, err := tb.Price(&e); err == nil && ok && (cost < 0 || cost > tokenledger.MaxEventCost) {
				t.Fatalf("model %q priced at %d nano-dollars, outside the contract", m.Key, cost)
			}
			_ = m.Tiers()
		}
	})
}
