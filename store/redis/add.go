package redis

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tokenledger/tokenledger"
)

// call is one script call: events of one UTC day, by place in the
// caller's batch. The combiner merges calls of one day before they are
// encoded (combiner.go).
type call struct {
	day    *dayKeys
	events []tokenledger.Event // copies: a flush may encode them after the caller gave up
	fields []string            // the events' claim fields (ClaimField)
	idx    []int               // the events' places in the caller's batch
	token  string              // the call's claim token; "" for none
	eval   bool                // send the script's source (EVAL), not its SHA
	// perEvent keeps the call on the per-event script (v7): set after
	// the summed script found an id claimed before.
	perEvent bool
	// withV6 makes the summed call carry its v6 claim keys: set for a day
	// the store knows may hold some (Store.markV6), or after the script
	// answered summedWantsV6Keys to this call.
	withV6 bool
}

// args returns the call as the script's command: EVALSHA (or EVAL) with
// KEYS and ARGV as docs/redis.md, "Writing: the add script", lays out; of
// the summed script (v11) when the call qualifies, else of the per-event
// script (v7's layout).
func (cl *call) args() []any {
	if cmd, ok := cl.summedArgs(); ok {
		return cmd
	}
	n := len(cl.events)
	cmd := make([]any, 0, 3+DayKeys+KeysPerEvent*n+1+ArgsPerEvent*n+1)
	if cl.eval {
		cmd = append(cmd, "EVAL", addScript)
	} else {
		cmd = append(cmd, "EVALSHA", addSHA)
	}
	cmd = append(cmd, strconv.Itoa(DayKeys+KeysPerEvent*n))
	cmd = append(cmd, cl.day.keys[:]...)
	for j := range cl.events {
		cmd = append(cmd, cl.day.claim+cl.events[j].ID, cl.day.buckets[ClaimBucket(cl.fields[j])])
	}
	cmd = append(cmd, cl.day.exp)
	for j := range cl.events {
		e := &cl.events[j]
		cmd = append(cmd, e.Model, e.UserID, e.SessionID,
			e.PromptTokens, e.CompletionTokens, e.TotalTokens,
			e.CacheReadTokens, e.CacheWriteTokens, e.ReasoningTokens, int64(e.Cost), sourceCodes[e.Pricing],
			cl.fields[j])
	}
	if cl.token != "" {
		cmd = append(cmd, cl.token)
	}
	return cmd
}

// add counts each event whose ID is new within its UTC day, in one round
// trip: one script call per day (more past MaxEventsPerCall), pipelined.
// After NOSCRIPT the affected calls are sent again with the source, which
// loads it; a summed call that found an id claimed before is sent again
// per event. An event whose day has expired is not written and reported
// as not new. The events come from a tokenledger.Batch: each has passed
// the contract's rules.
func (c *Store) add(ctx context.Context, events []tokenledger.Event) (tokenledger.AddResult, error) {
	op := fmt.Sprintf("add %d events", len(events))
	if err := ctx.Err(); err != nil {
		return tokenledger.AddResult{}, fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	res := tokenledger.AddResult{New: make([]bool, len(events))}
	calls := c.buildCalls(events)
	if len(calls) == 0 {
		return res, nil
	}
	// A call is sent again when the server lacks its script (NOSCRIPT: with
	// the source), when the summed script wants the v6 claim keys (with
	// them), or when it found an id claimed before (per event). Each
	// happens at most once per call.
	for round, pending := 0, calls; len(pending) > 0; round++ {
		name := op
		if round > 0 {
			name = op + " (sent again)"
		}
		if round == 4 {
			return tokenledger.AddResult{}, fmt.Errorf("%s: %s: the script calls were still unsettled after 4 round trips", c.server, op)
		}
		replies, err := c.sendCalls(ctx, name, pending)
		if err != nil {
			return tokenledger.AddResult{}, err
		}
		var again []*call
		for i, r := range replies {
			cl := pending[i]
			if e, ok := r.(ReplyError); ok && e.Code() == "NOSCRIPT" {
				cl.eval = true
				again = append(again, cl)
				continue
			}
			if v, ok := r.(int64); ok && v == summedWantsV6Keys && !cl.withV6 {
				cl.withV6 = true
				c.markV6(cl.day.day)
				again = append(again, cl)
				continue
			}
			if v, ok := r.(int64); ok {
				done, err := summedReply(v, cl.idx, res.New)
				if err != nil {
					return tokenledger.AddResult{}, fmt.Errorf("%s: %s: %w", c.server, op, err)
				}
				if done {
					cl.day.wantHashes.Store(v == summedWantsHashes)
				} else {
					cl.perEvent = true
					again = append(again, cl)
				}
				continue
			}
			if err := c.readAddReply(op, r, cl.idx, res.New); err != nil {
				return tokenledger.AddResult{}, err
			}
		}
		pending = again
	}
	return res, nil
}

// readAddReply stores the script's per-event answers into isNew.
func (c *Store) readAddReply(op string, r any, idx []int, isNew []bool) error {
	if e, ok := r.(ReplyError); ok {
		if oe := overflowError(e); oe != nil {
			return oe
		}
		return c.replyFail(op, e)
	}
	arr, ok := r.([]any)
	if !ok || len(arr) != len(idx) {
		return fmt.Errorf("%s: %s: the script answered %T with %d values for %d events", c.server, op, r, lenOf(r), len(idx))
	}
	for j, v := range arr {
		n, err := toInt(v)
		if err != nil || (n != 0 && n != 1) {
			return fmt.Errorf("%s: %s: the script answered %v for an event, want 0 or 1", c.server, op, v)
		}
		isNew[idx[j]] = n == 1
	}
	return nil
}

// overflowRe matches the script's refusal of a counter that would reach
// 2^62: "… counter <field> of <prefix>:{<date>}:<kind> would overflow",
// where a model's or user's field is "<code>|<name>" and the name may hold
// spaces (even " of "); only the code before the "|" is needed.
var overflowRe = regexp.MustCompile(`^ERR tokenledger add: counter ([a-z$]+)(?:\|.*)? of \S*:\{(\d{4}-\d{2}-\d{2})\}:[a-z]+ would overflow$`)

// counterNames maps the script's hash fields to the JSON names of the
// counters.
var counterNames = map[string]string{CodeTotal: "totalTokens", CodePrompt: "promptTokens", CodeCompletion: "completionTokens", CodeRequests: "requestCount",
	CodeCacheRead: "cacheReadTokens", CodeCacheWrite: "cacheWriteTokens", CodeReasoning: "reasoningTokens", CodeCost: "costUsd",
	CodePricedClient: "pricing.client", CodePricedTable: "pricing.table", CodeUnpriced: "pricing.unpriced"}

// overflowError returns the script's overflow refusal e as the
// *tokenledger.CounterOverflowError every store returns for it (nothing
// was written), or nil for any other error.
func overflowError(e ReplyError) *tokenledger.CounterOverflowError {
	m := overflowRe.FindStringSubmatch(string(e))
	if m == nil {
		return nil
	}
	field := m[1]
	name, ok := counterNames[field]
	if !ok {
		name = field
	}
	return &tokenledger.CounterOverflowError{Date: tokenledger.Date(m[2]), Counter: name}
}

func lenOf(r any) int {
	if a, ok := r.([]any); ok {
		return len(a)
	}
	return 0
}

// buildCalls groups events into script calls, one per
// day (split past MaxEventsPerCall), in order of first appearance; the
// events of one day keep their order. Days already expired are left out.
func (c *Store) buildCalls(events []tokenledger.Event) []*call {
	type group struct {
		day *dayKeys
		idx []int
	}
	var groups []group
	now := c.now().Unix()
	for i := range events {
		e := &events[i]
		day := dayNumber(e.Timestamp)
		g := -1
		for k := range groups { // a batch rarely spans more than a few days
			if groups[k].day.day == day {
				g = k
				break
			}
		}
		if g < 0 {
			if c.expireAt(day) <= now {
				continue // expired: see add
			}
			g = len(groups)
			groups = append(groups, group{day: c.dayKeysOf(day, e.Timestamp)})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	var calls []*call
	for _, g := range groups {
		_, withV6 := c.v6Days.Load(g.day.day)
		for start := 0; start < len(g.idx); start += MaxEventsPerCall {
			idx := g.idx[start:min(start+MaxEventsPerCall, len(g.idx))]
			cl := &call{day: g.day, idx: idx, events: make([]tokenledger.Event, len(idx)), fields: make([]string, len(idx)), withV6: withV6}
			for j, i := range idx {
				cl.events[j] = events[i]
				cl.fields[j] = ClaimField(events[i].ID)
			}
			if c.tokens {
				cl.token = newClaimToken()
			}
			calls = append(calls, cl)
		}
	}
	return calls
}

// newClaimToken returns a random claim token for one script call: a decimal
// integer from 10^4 to 2^62, which Redis stores as an integer (below 10^4
// it would share its preallocated small integers with other keys' values,
// and "1" is what a call without a token stores).
func newClaimToken() string {
	return strconv.FormatInt(10_000+mrand.Int64N(1<<62-10_000), 10)
}

// dayKeys is what every script call of one day carries: the day's five
// keys (as command arguments), the start of its claim keys, its claim
// hashes and its expiry.
type dayKeys struct {
	day     int64 // days since 1970-01-01 (UTC)
	keys    [DayKeys]any
	claim   string   // "<prefix>:{<day>}:id:"
	buckets []string // the claim hashes, "<prefix>:{<day>}:ids:<b>"
	marker  string   // "<prefix>:{<day>}:claimexp" (the summed script, v9)
	dense   string   // "<prefix>:{<day>}:claimdense" (the summed script, v10)
	exp     int64
	// wantHashes is set when the summed script asked for the day's claim
	// hashes: the next summed call carries them, so that the script sets
	// their expiry and the claim-expiry marker, or makes them hash tables
	// on a dense day.
	wantHashes atomic.Bool
}

// dayKeysOf returns the dayKeys of day (the UTC day of t). The last day
// asked for is kept: concurrent calls are nearly all for today.
func (c *Store) dayKeysOf(day int64, t time.Time) *dayKeys {
	if d := c.lastDay.Load(); d != nil && d.day == day {
		return d
	}
	date := tokenledger.DateOf(t)
	d := &dayKeys{day: day, claim: c.keys.ID(date, ""), marker: c.keys.Day(date, KindClaimExpiry), dense: c.keys.Day(date, KindClaimDense), exp: c.expireAt(day), buckets: make([]string, ClaimBuckets)}
	for b := range d.buckets {
		d.buckets[b] = c.keys.Bucket(date, b)
	}
	for i, kind := range [DayKeys]string{KindTotals, KindModels, KindUsers, KindUserSet, KindSessions} {
		d.keys[i] = c.keys.Day(date, kind)
	}
	c.lastDay.Store(d)
	return d
}

// markV6 records that day may hold v6 claim keys (its totals lack nov6),
// so that its summed calls carry them from now on. A day never loses
// this, so the record is dropped only once the day has expired: those
// more than the retention before day.
func (c *Store) markV6(day int64) {
	if _, had := c.v6Days.LoadOrStore(day, struct{}{}); had {
		return
	}
	c.v6Days.Range(func(k, _ any) bool {
		if k.(int64) < day-int64(c.retention)-1 {
			c.v6Days.Delete(k)
		}
		return true
	})
}

// dayNumber returns the UTC day of t as days since 1970-01-01.
func dayNumber(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// expireAt returns the expiry (unix seconds) of the keys of day number
// day: the start of day + R + 1. It equals ExpireAt(date).Unix().
func (c *Store) expireAt(day int64) int64 {
	return (day + int64(c.retention) + 1) * 86400
}

// toInt reads an integer reply, or a bulk string holding a decimal integer.
func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("value %q is not an integer", truncate(x, 40))
		}
		return n, nil
	}
	return 0, fmt.Errorf("value is %T, want an integer", v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
