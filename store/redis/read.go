package redis

import (
	"context"
	"fmt"
	"sync"

	"github.com/tokenledger/tokenledger"
)

// days reads the days in [q.From, q.To] that hold usage, oldest first.
// Days whose keys have already expired are not asked for. A field or value
// that cannot be read is an error that names the key.
//
// A Store keeps the days it has read, each with the request count it was
// read at, and first asks the database only for each day's request count
// (HGET totals n) and the reset marker, in one round trip: every counted
// event adds to its day's request count, so a day whose count is unchanged
// since the same reset holds exactly what was read before. Only the days
// that changed, or were never read, are read whole, in a second round trip
// (docs/redis.md, "Reading").
func (c *Store) days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	op := fmt.Sprintf("read days %s to %s", q.From, q.To)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	if _, err := tokenledger.ParseDate(string(q.From)); err != nil {
		return nil, fmt.Errorf("read days: from: %w", err)
	}
	if _, err := tokenledger.ParseDate(string(q.To)); err != nil {
		return nil, fmt.Errorf("read days: to: %w", err)
	}
	if q.From > q.To {
		return nil, nil
	}
	// The keys of day D exist until the start of D + R + 1, so the oldest
	// day that can still hold usage is today − R.
	oldest := tokenledger.DateOf(c.now()).AddDays(-c.retention)
	from := max(q.From, oldest)
	if from > q.To {
		return nil, nil
	}
	n := tokenledger.DaysBetween(from, q.To) + 1
	if n > MaxDaysPerRead {
		return nil, fmt.Errorf("read days: a range of %d days is longer than the %d a read may span", n, MaxDaysPerRead)
	}
	dates := make([]tokenledger.Date, n)
	for i := range dates {
		dates[i] = from.AddDays(i)
	}
	if c.cache == nil {
		return c.readDays(ctx, op, dates, q.Users)
	}
	return c.cache.days(ctx, c, op, dates, q.Users, oldest)
}

// readDays reads the given days whole in one pipelined round trip: per
// day HGETALL of the totals and the models, SCARD of the user and session
// sets and, with users, HGETALL of the users. Days without usage are left
// out.
func (c *Store) readDays(ctx context.Context, op string, dates []tokenledger.Date, users bool) ([]tokenledger.Day, error) {
	per := 4
	if users {
		per = 5
	}
	cmds := make([][]any, 0, len(dates)*per)
	for _, d := range dates {
		cmds = append(cmds,
			[]any{"HGETALL", c.keys.Day(d, KindTotals)},
			[]any{"HGETALL", c.keys.Day(d, KindModels)},
			[]any{"SCARD", c.keys.Day(d, KindUserSet)},
			[]any{"SCARD", c.keys.Day(d, KindSessions)})
		if users {
			cmds = append(cmds, []any{"HGETALL", c.keys.Day(d, KindUsers)})
		}
	}
	replies, err := c.do(ctx, op, cmds)
	if err != nil {
		return nil, err
	}
	var out []tokenledger.Day
	for i, d := range dates {
		day, err := c.readDay(op, d, replies[i*per:(i+1)*per], users)
		if err != nil {
			return nil, err
		}
		if day.RequestCount > 0 {
			out = append(out, day)
		}
	}
	return out, nil
}

// readDay builds one Day from its replies (see Days for their order).
func (c *Store) readDay(op string, d tokenledger.Date, r []any, users bool) (tokenledger.Day, error) {
	for i, v := range r {
		if e, ok := v.(ReplyError); ok {
			return tokenledger.Day{}, c.replyFail(fmt.Sprintf("%s: day %s reply %d", op, d, i+1), e)
		}
	}
	day := tokenledger.EmptyDay(d)
	key := c.keys.Day(d, KindTotals)
	err := eachPair(r[0], func(f string, v int64) error {
		switch f {
		case CodeTotal:
			day.TotalTokens = v
		case CodePrompt:
			day.PromptTokens = v
		case CodeCompletion:
			day.CompletionTokens = v
		case CodeRequests:
			day.RequestCount = v
		case CodeCacheRead:
			day.CacheReadTokens = v
		case CodeCacheWrite:
			day.CacheWriteTokens = v
		case CodeReasoning:
			day.ReasoningTokens = v
		case CodeCost:
			day.Cost = tokenledger.Nanos(v)
		default:
			setPricing(&day.Pricing, f, v)
		}
		// Unknown fields are left for a newer writer's readers.
		return nil
	})
	if err != nil {
		return day, fmt.Errorf("%s: %s: key %s: %w", c.server, op, key, err)
	}
	if day.Models, err = readNamed(r[1]); err != nil {
		return day, fmt.Errorf("%s: %s: key %s: %w", c.server, op, c.keys.Day(d, KindModels), err)
	}
	if day.UniqueUsers, err = toInt(r[2]); err != nil {
		return day, fmt.Errorf("%s: %s: SCARD %s: %w", c.server, op, c.keys.Day(d, KindUserSet), err)
	}
	if day.UniqueSessions, err = toInt(r[3]); err != nil {
		return day, fmt.Errorf("%s: %s: SCARD %s: %w", c.server, op, c.keys.Day(d, KindSessions), err)
	}
	if users {
		if day.Users, err = readNamed(r[4]); err != nil {
			return day, fmt.Errorf("%s: %s: key %s: %w", c.server, op, c.keys.Day(d, KindUsers), err)
		}
	}
	return day, nil
}

// readNamed reads a per-model or per-user hash ("<code>|<name>" fields).
func readNamed(r any) (map[string]tokenledger.Totals, error) {
	out := map[string]tokenledger.Totals{}
	err := eachPair(r, func(f string, v int64) error {
		code, name, ok := cut(f)
		if !ok {
			return fmt.Errorf("field %q has no counter code", f)
		}
		t := out[name]
		switch code {
		case CodeTotal:
			t.TotalTokens = v
		case CodePrompt:
			t.PromptTokens = v
		case CodeCompletion:
			t.CompletionTokens = v
		case CodeRequests:
			t.RequestCount = v
		case CodeCost:
			t.Cost = tokenledger.Nanos(v)
		default:
			if !setPricing(&t.Pricing, code, v) {
				return nil // a newer writer's counter
			}
		}
		out[name] = t
		return nil
	})
	return out, err
}

// setPricing sets the price-source counter named by code to v and
// reports whether code is one.
func setPricing(p *tokenledger.PricingCounts, code string, v int64) bool {
	switch code {
	case CodePricedClient:
		p.Client = v
	case CodePricedTable:
		p.Table = v
	case CodeUnpriced:
		p.Unpriced = v
	default:
		return false
	}
	return true
}

// cut splits "<code>|<name>" at the first "|".
func cut(f string) (code, name string, ok bool) {
	for i := 0; i < len(f); i++ {
		if f[i] == '|' {
			return f[:i], f[i+1:], true
		}
	}
	return "", "", false
}

// eachPair calls fn for each field and integer value of a flat
// field/value array reply (HGETALL in RESP2).
func eachPair(r any, fn func(field string, v int64) error) error {
	if r == nil {
		return nil
	}
	arr, ok := r.([]any)
	if !ok || len(arr)%2 != 0 {
		return fmt.Errorf("reply is %T of %d elements, want a field/value list", r, lenOf(r))
	}
	for i := 0; i < len(arr); i += 2 {
		f, ok := arr[i].(string)
		if !ok {
			return fmt.Errorf("field %d is %T, want a string", i/2, arr[i])
		}
		v, err := toInt(arr[i+1])
		if err != nil {
			return fmt.Errorf("field %q: %w", f, err)
		}
		if err := fn(f, v); err != nil {
			return err
		}
	}
	return nil
}

// dayCache holds the days a Store has read. Its entries are valid for the
// reset marker's value they were read under (epoch), and each for the
// request count it was read at. Entries are only kept while the two reset
// markers agree (no reset under way), and every kept day was read after
// the markers: a reset that starts later changes the marker first, which
// empties the cache at the next read. Returned days share their maps with
// the cache: callers only read them.
type dayCache struct {
	mu      sync.Mutex
	epoch   string // the reset marker's value when the entries were read
	entries map[tokenledger.Date]cachedDay
}

// cachedDay is one day as read, with whether its users were read too.
type cachedDay struct {
	day   tokenledger.Day
	users bool
}

// days answers Days from the cache, reading whole only the days whose
// request count differs from the cached one.
func (dc *dayCache) days(ctx context.Context, c *Store, op string, dates []tokenledger.Date, users bool, oldest tokenledger.Date) ([]tokenledger.Day, error) {
	cmds := make([][]any, 0, len(dates)+2)
	cmds = append(cmds, []any{"GET", c.keys.Mark(resetMark)}, []any{"GET", c.keys.Mark(resetDoneMark)})
	for _, d := range dates {
		cmds = append(cmds, []any{"HGET", c.keys.Day(d, KindTotals), CodeRequests})
	}
	replies, err := c.do(ctx, op, cmds)
	if err != nil {
		return nil, err
	}
	epoch, ok1 := markValue(replies[0])
	done, ok2 := markValue(replies[1])
	if !ok1 || !ok2 || epoch != done {
		// A reset under way (or one that died half-way, or one by a version
		// without the second marker): what is read now may be deleted next.
		dc.clear()
		return c.readDays(ctx, op, dates, users)
	}
	counts := make([]int64, len(dates))
	for i, r := range replies[2:] {
		if r == nil {
			continue // no usage that day
		}
		n, err := toInt(r)
		if err != nil || n < 0 {
			// A reply the full read explains better (WRONGTYPE, a bad value).
			return c.readDays(ctx, op, dates, users)
		}
		counts[i] = n
	}

	out := make([]tokenledger.Day, len(dates))
	var stale []tokenledger.Date
	dc.mu.Lock()
	if dc.entries == nil || dc.epoch != epoch {
		dc.entries, dc.epoch = map[tokenledger.Date]cachedDay{}, epoch
	}
	for i, d := range dates {
		e, ok := dc.entries[d]
		switch {
		case counts[i] == 0:
			delete(dc.entries, d)
		case ok && e.day.RequestCount == counts[i] && (e.users || !users):
			out[i] = e.day
			if !users {
				out[i].Users = nil
			}
		default:
			stale = append(stale, d)
		}
	}
	dc.mu.Unlock()

	if len(stale) > 0 {
		fresh, err := c.readDays(ctx, op, stale, users)
		if err != nil {
			return nil, err
		}
		dc.store(epoch, fresh, users, oldest)
		byDate := make(map[tokenledger.Date]tokenledger.Day, len(fresh))
		for _, d := range fresh {
			byDate[d.Date] = d
		}
		for i, d := range dates {
			if f, ok := byDate[d]; ok {
				out[i] = f
			}
		}
	}
	kept := out[:0]
	for _, d := range out {
		if d.RequestCount > 0 {
			kept = append(kept, d)
		}
	}
	return kept, nil
}

// markValue is a reset marker's reply as a string ("" when the key does
// not exist); ok is false for any other reply (an error, a wrong type).
func markValue(r any) (v string, ok bool) {
	switch r := r.(type) {
	case nil:
		return "", true
	case string:
		return r, true
	}
	return "", false
}

// store keeps fresh days read under epoch, unless a read under a newer
// reset marker has replaced the entries meanwhile, and drops days older
// than oldest (expired).
func (dc *dayCache) store(epoch string, fresh []tokenledger.Day, users bool, oldest tokenledger.Date) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.epoch != epoch {
		return
	}
	for _, d := range fresh {
		// A day read while an event was being added may hold part of it
		// in one hash and not another; its request count (read first) is
		// then below the day's, so the next read reads it again.
		dc.entries[d.Date] = cachedDay{day: d, users: users}
	}
	for d := range dc.entries {
		if d < oldest {
			delete(dc.entries, d)
		}
	}
}

// clear forgets every day (after a reset through this Store).
func (dc *dayCache) clear() {
	dc.mu.Lock()
	dc.entries = nil
	dc.mu.Unlock()
}
