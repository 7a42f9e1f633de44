package tokenledger

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// fullDays returns n consecutive days ending 2026-11-27 whose counters are
// each 2^62 − 1 (the most a store keeps), with requests requests and the
// same totals under model "m" and user "u".
func fullDays(n int, requests int64) []Day {
	const top = MaxCounter - 1
	t := Totals{PromptTokens: top, CompletionTokens: top, TotalTokens: top, RequestCount: requests, Cost: top}
	days := make([]Day, n)
	for i := range days {
		date := Date("2026-11-27").AddDays(i - n + 1)
		days[i] = Day{Date: date, TotalTokens: top, PromptTokens: top, CompletionTokens: top,
			RequestCount: requests, Cost: top,
			Models: map[string]Totals{"m": t, "small": {TotalTokens: 1, RequestCount: 1}},
			Users:  map[string]Totals{"u": t}}
	}
	return days
}

// TestStatsSumsExactOrCapped: two full days sum to 2^63 − 2, which int64
// holds exactly; 91 full days do not, and the report shows the largest
// int64 with capped set instead of a wrapped (negative) number. The
// average comes from the exact sums in either case.
func TestStatsSumsExactOrCapped(t *testing.T) {
	two := ComputeStats(fullDays(2, 1<<22))
	if two.TotalTokensAllTime != math.MaxInt64-1 || int64(two.TotalCost) != math.MaxInt64-1 || two.TotalRequests != 1<<23 || two.Capped {
		t.Errorf("two full days: tokens %d, cost %d, requests %d, capped %v; want 2^63-2 exactly, 2^23 requests, not capped",
			two.TotalTokensAllTime, int64(two.TotalCost), two.TotalRequests, two.Capped)
	}
	if two.AvgTokensPerRequest != 1<<40 { // (2^62 − 1) / 2^22 rounds to 2^40
		t.Errorf("two full days: avgTokensPerRequest %d, want %d", two.AvgTokensPerRequest, int64(1<<40))
	}

	all := ComputeStats(fullDays(91, 1<<22))
	if all.TotalTokensAllTime != math.MaxInt64 || all.TotalCost != math.MaxInt64 || !all.Capped {
		t.Errorf("91 full days: tokens %d, cost %d, capped %v; want math.MaxInt64 for both and capped",
			all.TotalTokensAllTime, int64(all.TotalCost), all.Capped)
	}
	if all.TotalRequests != 91<<22 || all.AvgTokensPerRequest != 1<<40 {
		t.Errorf("91 full days: requests %d, avg %d; want %d, %d", all.TotalRequests, all.AvgTokensPerRequest, 91<<22, int64(1<<40))
	}
	b, err := json.Marshal(all)
	if err != nil || !strings.Contains(string(b), `"capped":true`) || strings.Contains(string(b), `-`+"9") {
		t.Errorf("91 full days as JSON: %s, %v; want capped:true and no negative number", b, err)
	}
	if b, _ := json.Marshal(two); strings.Contains(string(b), "capped") {
		t.Errorf("stats that fit carry a capped field: %s", b)
	}
}

// TestStatsAverageWithoutDoubling: one day of 2^62 − 1 tokens in one
// request averages 2^62 − 1; doubling the sum to round would overflow.
func TestStatsAverageWithoutDoubling(t *testing.T) {
	s := ComputeStats([]Day{{Date: "2026-11-27", TotalTokens: MaxCounter - 1, RequestCount: 1}})
	if s.AvgTokensPerRequest != MaxCounter-1 || s.Capped {
		t.Errorf("avgTokensPerRequest %d (capped %v), want %d", s.AvgTokensPerRequest, s.Capped, int64(MaxCounter-1))
	}
	// Rounding half up is kept: 5 tokens in 2 requests is 3, 7 in 3 is 2.
	for _, c := range []struct{ tok, req, want int64 }{{5, 2, 3}, {7, 3, 2}, {149, 5, 30}} {
		if got := ComputeStats([]Day{{Date: "2026-11-27", TotalTokens: c.tok, RequestCount: c.req}}).AvgTokensPerRequest; got != c.want {
			t.Errorf("avg of %d tokens in %d requests = %d, want %d", c.tok, c.req, got, c.want)
		}
	}
}

// TestModelAndUserSumsCapped: the models and users reports sum the same
// way: a row whose sums pass int64 shows the largest int64 and capped,
// still sorts first, and the other rows stay exact.
func TestModelAndUserSumsCapped(t *testing.T) {
	days := fullDays(91, 1<<22)
	models := Models(days)
	if len(models) != 2 || models[0].Model != "m" || !models[0].Capped ||
		models[0].TotalTokens != math.MaxInt64 || models[0].Cost != math.MaxInt64 || models[0].RequestCount != 91<<22 {
		t.Fatalf("models over 91 full days: %+v", models)
	}
	if m := models[1]; m.Model != "small" || m.Capped || m.TotalTokens != 91 || m.RequestCount != 91 {
		t.Errorf("small model row: %+v, want 91 tokens in 91 requests, not capped", m)
	}
	users := Users(days)
	if len(users) != 1 || !users[0].Capped || users[0].PromptTokens != math.MaxInt64 || users[0].CompletionTokens != math.MaxInt64 {
		t.Errorf("users over 91 full days: %+v", users)
	}
	if two := Models(fullDays(2, 1)); two[0].Capped || two[0].TotalTokens != math.MaxInt64-1 {
		t.Errorf("model over two full days: %+v, want 2^63 − 2 exactly", two[0])
	}
}

// TestWideSumNegative: the accumulator is two's complement, so negative
// values (which stores never return) still sum exactly and cap low.
func TestWideSumNegative(t *testing.T) {
	var w wideSum
	w.add(-5)
	w.add(3)
	if v, ok := w.int64(); v != -2 || !ok || w.big().Int64() != -2 {
		t.Errorf("-5 + 3 = %d (%v, big %s)", v, ok, w.big())
	}
	w.add(math.MinInt64)
	if v, ok := w.int64(); v != math.MinInt64 || ok {
		t.Errorf("below int64: %d, %v; want MinInt64, false", v, ok)
	}
}
