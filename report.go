package tokenledger

import (
	"math"
	"math/big"
	"math/bits"
	"sort"
)

// Stats summarises the retained window.
type Stats struct {
	TotalTokensAllTime  int64 `json:"totalTokensAllTime"`
	TotalRequests       int64 `json:"totalRequests"`
	AvgTokensPerRequest int64 `json:"avgTokensPerRequest"`
	// MostActiveDate is the date with the most totalTokens (the later date
	// on a tie), nil when nothing is stored.
	MostActiveDate *Date `json:"mostActiveDate"`
	// DaysTracked counts dates with at least one request.
	DaysTracked int   `json:"daysTracked"`
	TotalCost   Nanos `json:"totalCostUsd"`
	// Pricing counts the window's requests by where their cost came from.
	Pricing   PricingCounts `json:"pricing"`
	FirstDate *Date         `json:"firstDate"`
	LastDate  *Date         `json:"lastDate"`
	TopModel  *string       `json:"topModel"`
	// Capped is true when a sum or the average did not fit in int64 and is
	// shown as the largest int64 instead (see wideSum). It is left out of
	// the JSON when false.
	Capped bool `json:"capped,omitempty"`
}

// NamedTotals are the totals of one model or one user over a window.
type NamedTotals struct {
	// Name is the model name or the userId.
	Name string `json:"-"`
	Totals
	// Capped is true when one of the sums did not fit in int64.
	Capped bool `json:"-"`
}

// wideSum sums int64 values in 128-bit two's complement, so that the sum
// of any number of days whose counters are below MaxCounter (2^62) is
// exact: 2^64 days would be needed to wrap it.
//
// What a report shows when a sum does not fit: the JSON fields are int64
// (costs int64 nano-dollars), so a report shows the largest int64
// (math.MaxInt64; the smallest for a negative sum, which stores never
// return) and sets "capped": true beside it, never a wrapped or negative
// number. Stores keep each day's counters below 2^62, so this takes at
// least two full days of one counter, e.g. more than $9.2 billion in the
// window.
type wideSum struct{ hi, lo uint64 }

// add adds v to w.
func (w *wideSum) add(v int64) {
	var carry uint64
	w.lo, carry = bits.Add64(w.lo, uint64(v), 0)
	ext := uint64(0)
	if v < 0 {
		ext = math.MaxUint64
	}
	w.hi, _ = bits.Add64(w.hi, ext, carry)
}

// int64 returns w when it fits in int64, otherwise the nearest int64 and
// false.
func (w wideSum) int64() (int64, bool) {
	neg := int64(w.hi) < 0
	if (!neg && w.hi == 0 && w.lo <= math.MaxInt64) || (neg && w.hi == math.MaxUint64 && w.lo > math.MaxInt64) {
		return int64(w.lo), true
	}
	if neg {
		return math.MinInt64, false
	}
	return math.MaxInt64, false
}

// big returns w as a big.Int.
func (w wideSum) big() *big.Int {
	neg := int64(w.hi) < 0
	hi, lo := w.hi, w.lo
	if neg { // magnitude of the two's complement value
		lo, hi = ^lo+1, ^hi
		if lo == 0 {
			hi++
		}
	}
	b := new(big.Int).SetUint64(hi)
	b.Lsh(b, 64)
	b.Or(b, new(big.Int).SetUint64(lo))
	if neg {
		b.Neg(b)
	}
	return b
}

// wideTotals accumulates Totals without wrapping.
type wideTotals struct {
	prompt, completion, total, requests, cost wideSum
	pricing                                   widePricing
}

// widePricing accumulates PricingCounts without wrapping.
type widePricing struct{ client, table, unpriced wideSum }

func (w *widePricing) add(c PricingCounts) {
	w.client.add(c.Client)
	w.table.add(c.Table)
	w.unpriced.add(c.Unpriced)
}

// counts returns the sums and whether all fit in int64.
func (w *widePricing) counts() (PricingCounts, bool) {
	var c PricingCounts
	var ok [3]bool
	c.Client, ok[0] = w.client.int64()
	c.Table, ok[1] = w.table.int64()
	c.Unpriced, ok[2] = w.unpriced.int64()
	return c, ok == [3]bool{true, true, true}
}

func (w *wideTotals) add(t Totals) {
	w.prompt.add(t.PromptTokens)
	w.completion.add(t.CompletionTokens)
	w.total.add(t.TotalTokens)
	w.requests.add(t.RequestCount)
	w.cost.add(int64(t.Cost))
	w.pricing.add(t.Pricing)
}

// totals returns the sums as Totals and whether any was capped.
func (w *wideTotals) totals() (Totals, bool) {
	var t Totals
	var ok [6]bool
	t.PromptTokens, ok[0] = w.prompt.int64()
	t.CompletionTokens, ok[1] = w.completion.int64()
	t.TotalTokens, ok[2] = w.total.int64()
	t.RequestCount, ok[3] = w.requests.int64()
	var c int64
	c, ok[4] = w.cost.int64()
	t.Cost = Nanos(c)
	t.Pricing, ok[5] = w.pricing.counts()
	return t, ok != [6]bool{true, true, true, true, true, true}
}

// ModelTotals is one row of the models report.
type ModelTotals struct {
	Model string `json:"model"`
	Totals
	// Capped is true when one of the sums did not fit in int64 (see
	// wideSum).
	Capped bool `json:"capped,omitempty"`
}

// UserTotals is one row of the users report.
type UserTotals struct {
	UserID string `json:"userId"`
	Totals
	// Capped is true when one of the sums did not fit in int64 (see
	// wideSum).
	Capped bool `json:"capped,omitempty"`
}

// History returns n days ending with today, oldest first, taking each from
// days when present and zero-filling the rest. days may be in any order and
// may hold dates outside the range.
func History(days []Day, today Date, n int) []Day {
	byDate := make(map[Date]Day, len(days))
	for _, d := range days {
		byDate[d.Date] = d
	}
	out := make([]Day, n)
	for i := range n {
		date := today.AddDays(i - n + 1)
		if d, ok := byDate[date]; ok && d.RequestCount > 0 {
			out[i] = d
			if out[i].Models == nil {
				out[i].Models = map[string]Totals{}
			}
		} else {
			out[i] = EmptyDay(date)
		}
	}
	return out
}

// Find returns the day for date from days, or nil when it holds no usage.
func Find(days []Day, date Date) *Day {
	for i := range days {
		if days[i].Date == date && days[i].RequestCount > 0 {
			d := days[i]
			if d.Models == nil {
				d.Models = map[string]Totals{}
			}
			return &d
		}
	}
	return nil
}

// ComputeStats summarises days, which should be the retained window. The
// sums are exact; one that does not fit in int64 is capped (see wideSum).
// The average is rounded half up from the exact sums.
func ComputeStats(days []Day) Stats {
	var s Stats
	var best Day
	var tokens, requests, cost wideSum
	var pricing widePricing
	for _, d := range days {
		if d.RequestCount == 0 {
			continue
		}
		tokens.add(d.TotalTokens)
		requests.add(d.RequestCount)
		cost.add(int64(d.Cost))
		pricing.add(d.Pricing)
		s.DaysTracked++
		if s.FirstDate == nil || d.Date < *s.FirstDate {
			s.FirstDate = ptr(d.Date)
		}
		if s.LastDate == nil || d.Date > *s.LastDate {
			s.LastDate = ptr(d.Date)
		}
		if s.MostActiveDate == nil || d.TotalTokens > best.TotalTokens ||
			(d.TotalTokens == best.TotalTokens && d.Date > best.Date) {
			best = d
			s.MostActiveDate = ptr(d.Date)
		}
	}
	var ok [5]bool
	s.Pricing, ok[4] = pricing.counts()
	s.TotalTokensAllTime, ok[0] = tokens.int64()
	s.TotalRequests, ok[1] = requests.int64()
	var c int64
	c, ok[2] = cost.int64()
	s.TotalCost = Nanos(c)
	ok[3] = true
	if r := requests.big(); r.Sign() > 0 {
		// round(T/R) = floor(T/R) + 1 when the remainder is at least R/2,
		// taken on the exact sums: no doubling that could overflow.
		q, m := new(big.Int).DivMod(tokens.big(), r, new(big.Int))
		if m.Lsh(m, 1).Cmp(r) >= 0 {
			q.Add(q, big.NewInt(1))
		}
		if q.IsInt64() {
			s.AvgTokensPerRequest = q.Int64()
		} else {
			s.AvgTokensPerRequest, ok[3] = math.MaxInt64, false
			if q.Sign() < 0 {
				s.AvgTokensPerRequest = math.MinInt64
			}
		}
	}
	s.Capped = ok != [5]bool{true, true, true, true, true}
	if top := sortTotals(modelSums(days)); len(top) > 0 {
		s.TopModel = ptr(top[0].Name)
	}
	return s
}

// Models returns per-model totals over days, largest totalTokens first
// (ties by name).
func Models(days []Day) []ModelTotals {
	rows := sortTotals(modelSums(days))
	out := make([]ModelTotals, len(rows))
	for i, r := range rows {
		out[i] = ModelTotals{Model: r.Name, Totals: r.Totals, Capped: r.Capped}
	}
	return out
}

// Users returns per-user totals over days, largest totalTokens first (ties
// by userId). The days must have been read with DayQuery.Users.
func Users(days []Day) []UserTotals {
	rows := sortTotals(sumsBy(days, func(d Day) map[string]Totals { return d.Users }))
	out := make([]UserTotals, len(rows))
	for i, r := range rows {
		out[i] = UserTotals{UserID: r.Name, Totals: r.Totals, Capped: r.Capped}
	}
	return out
}

// modelSums returns each model's totals summed over days.
func modelSums(days []Day) map[string]*wideTotals {
	return sumsBy(days, func(d Day) map[string]Totals { return d.Models })
}

// sumsBy returns, per name, the totals that part picks from each day
// (its models or its users), summed over days.
func sumsBy(days []Day, part func(Day) map[string]Totals) map[string]*wideTotals {
	size := 0
	for _, d := range days {
		size = max(size, len(part(d)))
	}
	sums := make(map[string]*wideTotals, size)
	for _, d := range days {
		for name, t := range part(d) {
			s := sums[name]
			if s == nil {
				s = &wideTotals{}
				sums[name] = s
			}
			s.add(t)
		}
	}
	return sums
}

// sortTotals returns the rows of m, largest totalTokens first (ties by
// name). A capped sum sorts as the largest int64.
func sortTotals(m map[string]*wideTotals) []NamedTotals {
	rows := make([]NamedTotals, 0, len(m))
	for name, w := range m {
		t, capped := w.totals()
		rows = append(rows, NamedTotals{Name: name, Totals: t, Capped: capped})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].TotalTokens != rows[j].TotalTokens {
			return rows[i].TotalTokens > rows[j].TotalTokens
		}
		return rows[i].Name < rows[j].Name
	})
	return rows
}

func ptr[T any](v T) *T { return &v }
