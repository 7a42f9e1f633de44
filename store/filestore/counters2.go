package filestore

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
)

// totals2 is tokenledger.Totals as a version 2 snapshot holds it: the cost
// in integer nano-dollars, since a day's sum may exceed what an event's
// costUsd may hold.
type totals2 struct {
	PromptTokens     int64                     `json:"promptTokens"`
	CompletionTokens int64                     `json:"completionTokens"`
	TotalTokens      int64                     `json:"totalTokens"`
	RequestCount     int64                     `json:"requestCount"`
	CostNanos        int64                     `json:"costNanos"`
	Pricing          tokenledger.PricingCounts `json:"pricing"`
}

// counters2 is a day's own counters in a version 2 snapshot.
type counters2 struct {
	totals2
	CacheReadTokens  int64 `json:"cacheReadTokens"`
	CacheWriteTokens int64 `json:"cacheWriteTokens"`
	ReasoningTokens  int64 `json:"reasoningTokens"`
}

// day2 is one day's line of a version 2 usage file, or (End set) its last.
type day2 struct {
	Date     tokenledger.Date   `json:"date,omitempty"`
	Counters *counters2         `json:"counters,omitempty"`
	Models   map[string]totals2 `json:"models,omitempty"`
	Users    map[string]totals2 `json:"users,omitempty"`
	Sessions []string           `json:"sessions,omitempty"`
	// Gen, in a version 3 manifest, names the day's file instead.
	Gen uint64 `json:"gen,omitempty"`
	End *int   `json:"end,omitempty"`
}

// sortDays sorts day lines by date.
func sortDays(days []day2) {
	slices.SortFunc(days, func(a, b day2) int { return strings.Compare(string(a.Date), string(b.Date)) })
}

func toTotals2(t tokenledger.Totals) totals2 {
	return totals2{t.PromptTokens, t.CompletionTokens, t.TotalTokens, t.RequestCount, int64(t.Cost), t.Pricing}
}

func (t totals2) totals() tokenledger.Totals {
	return tokenledger.Totals{PromptTokens: t.PromptTokens, CompletionTokens: t.CompletionTokens, TotalTokens: t.TotalTokens,
		RequestCount: t.RequestCount, Cost: tokenledger.Nanos(t.CostNanos), Pricing: t.Pricing}
}

// toDay2 is a day's state as a snapshot line.
func toDay2(st dayagg.State) day2 {
	d := st.Day
	c := &counters2{
		totals2:         totals2{d.PromptTokens, d.CompletionTokens, d.TotalTokens, d.RequestCount, int64(d.Cost), d.Pricing},
		CacheReadTokens: d.CacheReadTokens, CacheWriteTokens: d.CacheWriteTokens, ReasoningTokens: d.ReasoningTokens,
	}
	out := day2{Date: d.Date, Counters: c, Models: map[string]totals2{}, Users: map[string]totals2{}, Sessions: st.Sessions}
	for k, v := range d.Models {
		out.Models[k] = toTotals2(v)
	}
	for k, v := range st.Users {
		out.Users[k] = toTotals2(v)
	}
	return out
}

// state is the day's state a snapshot line holds; it returns the reason
// when a counter is negative or at tokenledger.MaxCounter or beyond.
func (d day2) state() (dayagg.State, string) {
	if d.Counters == nil {
		return dayagg.State{}, "the day has no counters"
	}
	c := d.Counters
	for _, v := range []int64{c.PromptTokens, c.CompletionTokens, c.TotalTokens, c.RequestCount, c.CostNanos, c.CacheReadTokens, c.CacheWriteTokens, c.ReasoningTokens} {
		if v < 0 || v >= tokenledger.MaxCounter {
			return dayagg.State{}, fmt.Sprintf("a counter of day %s is out of bounds", d.Date)
		}
	}
	day := tokenledger.Day{
		Date: d.Date, PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens, TotalTokens: c.TotalTokens,
		RequestCount: c.RequestCount, Cost: tokenledger.Nanos(c.CostNanos), Pricing: c.Pricing,
		CacheReadTokens: c.CacheReadTokens, CacheWriteTokens: c.CacheWriteTokens, ReasoningTokens: c.ReasoningTokens,
		Models: make(map[string]tokenledger.Totals, len(d.Models)),
	}
	for k, v := range d.Models {
		day.Models[k] = v.totals()
	}
	users := make(map[string]tokenledger.Totals, len(d.Users))
	for k, v := range d.Users {
		users[k] = v.totals()
	}
	return dayagg.State{Day: day, Users: users, Sessions: d.Sessions}, ""
}
