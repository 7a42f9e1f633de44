package pricing

import (
	"encoding/json"
	"slices"
)

// TierInfo is one tier of a model's rates as GET /api/prices and
// `tokenledger prices` show them.
type TierInfo struct {
	// AboveTokens is the promptTokens an event must exceed for the tier to
	// bill it; 0 for the base tier.
	AboveTokens int64      `json:"aboveTokens"`
	Rates       []RateInfo `json:"rates"`
}

// RateInfo is the rate one bucket is billed at within a tier.
type RateInfo struct {
	// Bucket is input, cacheRead, cacheWrite, output or reasoning.
	Bucket string `json:"bucket"`
	// USDPerToken is the exact rate, or nil when the model has none for
	// the bucket (an event with such tokens is unpriced).
	USDPerToken *json.Number `json:"usdPerToken"`
	// USDPerMillion is the same rate per million tokens, as price pages
	// write it.
	USDPerMillion *json.Number `json:"usdPerMillion"`
	// Field is the price file's field the rate was taken from (another
	// bucket's on a fallback).
	Field string `json:"field,omitempty"`
}

// Tiers returns the model's tiers, the base tier first.
func (m *Model) Tiers() []TierInfo {
	out := make([]TierInfo, 0, len(m.tiers))
	for i := range m.tiers {
		t := &m.tiers[i]
		ti := TierInfo{AboveTokens: t.above, Rates: make([]RateInfo, nBuckets)}
		for b := range nBuckets {
			ri := RateInfo{Bucket: bucketNames[b]}
			if r := t.rates[b]; r != nil {
				per := json.Number(r.perToken.String())
				mil := json.Number(decimal{coef: r.perToken.coef, scale: r.perToken.scale - 6}.normal().String())
				ri.USDPerToken, ri.USDPerMillion, ri.Field = &per, &mil, r.Field
			}
			ti.Rates[b] = ri
		}
		out = append(out, ti)
	}
	slices.Reverse(out)
	return out
}

// Description is what GET /api/prices and `tokenledger prices --model`
// show for a model name: the key it matched, how, and the rates an event
// of it is billed at.
type Description struct {
	Model    string `json:"model"`
	Provider string `json:"provider,omitempty"`
	Key      string `json:"key"`
	// Match lists the lookup steps that found Key ("exact", or some of
	// "provider prefix", "without date", "case-insensitive").
	Match []string `json:"match"`
	// Source is "built-in" or "file" (TOKENLEDGER_PRICES).
	Source string `json:"source"`
	// LiteLLMProvider is the entry's litellm_provider.
	LiteLLMProvider string     `json:"litellmProvider,omitempty"`
	Tiers           []TierInfo `json:"tiers"`
}

// Describe looks model (sent with provider) up and describes the match;
// ok is false when no key matches.
func (t *Table) Describe(model, provider string) (Description, bool) {
	m, match, ok := t.Lookup(model, provider)
	if !ok {
		return Description{}, false
	}
	return Description{Model: model, Provider: provider, Key: m.Key, Match: match.How, Source: m.Source,
		LiteLLMProvider: m.Provider, Tiers: m.Tiers()}, true
}
