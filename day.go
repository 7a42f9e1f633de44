package tokenledger

import "fmt"

// Totals are the counters kept per model and per user within a day.
type Totals struct {
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	TotalTokens      int64 `json:"totalTokens"`
	RequestCount     int64 `json:"requestCount"`
	Cost             Nanos `json:"costUsd"`
	// Pricing counts the requests by where their cost came from.
	Pricing PricingCounts `json:"pricing"`
}

// AddEvent adds the counters of e to t.
func (t *Totals) AddEvent(e *Event) {
	t.PromptTokens += e.PromptTokens
	t.CompletionTokens += e.CompletionTokens
	t.TotalTokens += e.TotalTokens
	t.RequestCount++
	t.Cost += e.Cost
	t.Pricing.Count(e.Pricing)
}

// Add adds the counters of o to t.
func (t *Totals) Add(o Totals) {
	t.PromptTokens += o.PromptTokens
	t.CompletionTokens += o.CompletionTokens
	t.TotalTokens += o.TotalTokens
	t.RequestCount += o.RequestCount
	t.Cost += o.Cost
	t.Pricing.Add(o.Pricing)
}

// Day is the usage of one UTC day (the original service's
// DailyTokenUsage, with extensions). Stores return Days; every report is
// computed from them.
type Day struct {
	Date             Date  `json:"date"`
	TotalTokens      int64 `json:"totalTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	PromptTokens     int64 `json:"promptTokens"`
	RequestCount     int64 `json:"requestCount"`
	UniqueUsers      int64 `json:"uniqueUsers"`
	UniqueSessions   int64 `json:"uniqueSessions"`
	CacheReadTokens  int64 `json:"cacheReadTokens"`
	CacheWriteTokens int64 `json:"cacheWriteTokens"`
	ReasoningTokens  int64 `json:"reasoningTokens"`
	Cost             Nanos `json:"costUsd"`
	// Pricing counts the requests by where their cost came from.
	Pricing PricingCounts `json:"pricing"`
	// Models maps a model name to its totals for the day. Never nil in a
	// report; nil only in the range report's history, which leaves it out.
	Models map[string]Totals `json:"models,omitzero"`
	// Users maps a userId to its totals for the day. Stores fill it only
	// when DayQuery.Users is set; it is not part of the Day's JSON.
	Users map[string]Totals `json:"-"`
}

// EmptyDay returns a Day for date d with no usage.
func EmptyDay(d Date) Day {
	return Day{Date: d, Models: map[string]Totals{}}
}

// AddCounters adds the day-level and per-model counters of e to d. The
// caller decides whether e is new (idempotency) and maintains the unique
// user and session counts, which need sets.
func (d *Day) AddCounters(e *Event) {
	d.addDayLevel(e)
	if d.Models == nil {
		d.Models = map[string]Totals{}
	}
	m := d.Models[e.Model]
	m.AddEvent(e)
	d.Models[e.Model] = m
	if e.UserID != "" && d.Users != nil {
		u := d.Users[e.UserID]
		u.AddEvent(e)
		d.Users[e.UserID] = u
	}
}

// Clone returns a deep copy of d.
func (d Day) Clone() Day {
	c := d
	c.Models = make(map[string]Totals, len(d.Models))
	for k, v := range d.Models {
		c.Models[k] = v
	}
	if d.Users != nil {
		c.Users = make(map[string]Totals, len(d.Users))
		for k, v := range d.Users {
			c.Users[k] = v
		}
	}
	return c
}

// MaxCounter is the bound on every counter a store keeps for one day: the
// tokens of each kind, the request count and the cost in nano-dollars stay
// below it. It is the Redis store's guard (store/redis), 2^62, so
// every store refuses the same Add. Sums over many days are taken in a
// wider type (see report.go), never in int64.
const MaxCounter = 1 << 62

// CounterOverflowError is a store's refusal of an Add that would take a
// counter of a day to MaxCounter or beyond. Nothing of that Add was
// stored. It matches ErrInvalid.
type CounterOverflowError struct {
	// Date is the day whose counter would overflow.
	Date Date
	// Counter is the JSON name of the counter, e.g. "costUsd".
	Counter string
}

// Error returns one sentence naming the day and the counter.
func (e *CounterOverflowError) Error() string {
	return fmt.Sprintf("counter %s of day %s would overflow (reach 2^62); nothing was stored", e.Counter, e.Date)
}

// Is makes errors.Is(err, ErrInvalid) true for a *CounterOverflowError.
func (e *CounterOverflowError) Is(target error) bool { return target == ErrInvalid }

// CountEvent adds the day-level counters of e to d (not Models, Users or
// the unique counts) when every one of them stays below MaxCounter. If one
// would not, it returns a *CounterOverflowError and leaves d unchanged.
// Stores use it on a scratch copy of a day's counters to check a whole Add
// before writing anything. The counters of d must lie in [0, MaxCounter)
// and those of e must be valid (not negative, see Event.Validate).
func (d *Day) CountEvent(e *Event) error {
	checks := [...]struct {
		name     string
		cur, add int64
	}{
		{"totalTokens", d.TotalTokens, e.TotalTokens},
		{"completionTokens", d.CompletionTokens, e.CompletionTokens},
		{"promptTokens", d.PromptTokens, e.PromptTokens},
		{"requestCount", d.RequestCount, 1},
		{"cacheReadTokens", d.CacheReadTokens, e.CacheReadTokens},
		{"cacheWriteTokens", d.CacheWriteTokens, e.CacheWriteTokens},
		{"reasoningTokens", d.ReasoningTokens, e.ReasoningTokens},
		{"costUsd", int64(d.Cost), int64(e.Cost)},
	}
	for _, c := range checks {
		// cur < MaxCounter and add >= 0, so MaxCounter-cur cannot wrap.
		if c.add < 0 || c.add >= MaxCounter-c.cur {
			return &CounterOverflowError{Date: d.Date, Counter: c.name}
		}
	}
	d.addDayLevel(e)
	return nil
}

// addDayLevel adds e to d's day-level counters (not Models, Users or the
// unique counts).
func (d *Day) addDayLevel(e *Event) {
	d.TotalTokens += e.TotalTokens
	d.CompletionTokens += e.CompletionTokens
	d.PromptTokens += e.PromptTokens
	d.RequestCount++
	d.CacheReadTokens += e.CacheReadTokens
	d.CacheWriteTokens += e.CacheWriteTokens
	d.ReasoningTokens += e.ReasoningTokens
	d.Cost += e.Cost
	d.Pricing.Count(e.Pricing)
}
