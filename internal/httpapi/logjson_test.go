package httpapi

import (
	"bytes"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
)

// TestLogAnswerMatchesEncode: writeLogAnswer writes the same status,
// headers and bytes as encode for answers of every shape, plain strings
// or not; appendLogAnswer declines exactly the answers with a string that
// needs escaping or a price source without a name.
func TestLogAnswerMatchesEncode(t *testing.T) {
	plain := []string{"", "a", "evt-1", "0190b6c2-7f3a-7c1d-9e2b-4f5a6b7c8d9e", "x<y>&z", "~!#$%^*()_+{}|:?/.,;'[]=-`"}
	odd := []string{`q"uote`, `back\slash`, "tab\t", "é", "\u2028", "\x7f", "nul\x00", "\xff"}
	costs := []tokenledger.Nanos{0, 1, -1, 1_000_000_000, 1_500_000_000, 123_456_789_012, math.MaxInt64, math.MinInt64 + 1}
	sources := []tokenledger.PriceSource{tokenledger.PriceUnknown, tokenledger.PricedByClient, tokenledger.PricedByTable, tokenledger.Unpriced}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(list []string, oddOne bool) string {
		if oddOne {
			return odd[rng.IntN(len(odd))]
		}
		return list[rng.IntN(len(list))]
	}
	cases := []logAnswer{{}, {IDs: []string{}, Costs: []EventCost{}}}
	for i := range 400 {
		oddAt := -1
		if i%4 == 3 {
			oddAt = rng.IntN(4)
		}
		a := logAnswer{Accepted: rng.IntN(2000) - 5, Duplicates: rng.IntN(3), StorageType: pick([]string{"redis", "file", "kv-rest"}, oddAt == 0), Degraded: i%2 == 0}
		for range rng.IntN(6) {
			a.IDs = append(a.IDs, pick(plain, oddAt == 1 && rng.IntN(2) == 0))
		}
		for range rng.IntN(6) {
			c := EventCost{Cost: costs[rng.IntN(len(costs))], Pricing: sources[rng.IntN(len(sources))]}
			if rng.IntN(2) == 0 {
				c.PriceKey = pick([]string{"openai/gpt-4o", "anthropic/claude-sonnet-4"}, oddAt == 2)
			}
			a.Costs = append(a.Costs, c)
		}
		if oddAt == 3 {
			a.Costs = append(a.Costs, EventCost{Pricing: tokenledger.PriceSource(200)})
		}
		cases = append(cases, a)
	}
	declined := 0
	for i, a := range cases {
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		encode(want, http.StatusOK, a)
		writeLogAnswer(got, a)
		if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Fatalf("case %d %+v:\nwrote %d %q %q\nwant  %d %q %q", i, a, got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
		}
		_, ok := appendLogAnswer(nil, a)
		needsEncode := !plainAnswer(a)
		if ok == needsEncode {
			t.Errorf("case %d: appendLogAnswer ok = %v for an answer that needs encode = %v: %+v", i, ok, needsEncode, a)
		}
		if !ok {
			declined++
		}
	}
	if declined < 50 || declined > len(cases)-200 {
		t.Errorf("%d of %d answers went to encode: the cases do not cover both ways", declined, len(cases))
	}
}

// plainAnswer reports whether every string of a is printable ASCII
// without '"' and '\', and every price source has a name.
func plainAnswer(a logAnswer) bool {
	strs := append([]string{a.StorageType}, a.IDs...)
	for _, c := range a.Costs {
		if _, err := c.Pricing.MarshalText(); err != nil {
			return false
		}
		strs = append(strs, c.PriceKey)
	}
	for _, s := range strs {
		if strings.ContainsAny(s, `"\`) {
			return false
		}
		for _, r := range []byte(s) {
			if r < 0x20 || r > 0x7e {
				return false
			}
		}
	}
	return true
}
