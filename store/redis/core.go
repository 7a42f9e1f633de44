package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tokenledger/tokenledger"
)

// MaxDaysPerRead bounds the days one Days call may span.
const MaxDaysPerRead = tokenledger.MaxRetentionDays + 2

// scanCount is the COUNT hint of each SCAN in Reset.
const scanCount = 1000

// probeTTL is how long a Check probe key lives if its UNLINK is lost.
const probeTTL = 10 * time.Second

// Config configures a Core.
type Config struct {
	// Doer runs the commands. Required.
	Doer Doer
	// Prefix is the key prefix; DefaultPrefix when empty.
	Prefix string
	// RetentionDays is R: a day's keys expire at the start of day D + R + 1.
	// tokenledger.DefaultRetentionDays when 0.
	RetentionDays int
	// Now is the clock that decides which days have already expired;
	// time.Now when nil.
	Now tokenledger.Clock
	// Server names the database in every error, without credentials, e.g.
	// "redis 127.0.0.1:6379". Required.
	Server string
	// ClaimTokens gives every script call a random claim token of its own,
	// kept when the call is sent again, for a Doer that sends a request
	// again when its reply was lost (store/kvrest): the script then answers
	// an event the lost attempt counted as counted now, as that attempt
	// would have, instead of as counted before. (One token per call, not
	// per Add: an id repeated in a later call of the same Add must find
	// another call's token, and stay a duplicate.) Each such claim keeps the token (an
	// integer, about 16 bytes more than "1"). A Doer that never repeats a
	// request does not need it.
	ClaimTokens bool
	// NoReadCache makes every Days call read its days whole, as before the
	// cache: for benchmarks that compare the two.
	NoReadCache bool
}

// Core is a tokenledger store over a Doer, minus Close and Info, which
// the adapters add. It is safe for concurrent use.
type Core struct {
	doer      Doer
	keys      Keys
	retention int
	now       tokenledger.Clock
	server    string
	tokens    bool                    // Config.ClaimTokens
	lastDay   atomic.Pointer[dayKeys] // see dayKeysOf
	cache     *dayCache               // nil with Config.NoReadCache
}

// New returns a Core, or an error in one sentence when cfg breaks a rule.
func New(cfg Config) (*Core, error) {
	if cfg.Doer == nil {
		return nil, errors.New("redismodel: a Doer is required")
	}
	if cfg.Server == "" {
		return nil, errors.New("redismodel: a server description is required")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	keys, err := NewKeys(prefix)
	if err != nil {
		return nil, err
	}
	r := cfg.RetentionDays
	if r == 0 {
		r = tokenledger.DefaultRetentionDays
	}
	if r < 1 || r > tokenledger.MaxRetentionDays {
		return nil, fmt.Errorf("retention must be 1 to %d days, not %d", tokenledger.MaxRetentionDays, r)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Core{doer: cfg.Doer, keys: keys, retention: r, now: now, server: cfg.Server, tokens: cfg.ClaimTokens}
	if !cfg.NoReadCache {
		c.cache = &dayCache{}
	}
	return c, nil
}

// Keys returns the key layout.
func (c *Core) Keys() Keys { return c.keys }

// RetentionDays returns R.
func (c *Core) RetentionDays() int { return c.retention }

// Server returns the server description used in errors.
func (c *Core) Server() string { return c.server }

// ExpireAt returns when the keys of day d expire: the start of day D + R + 1.
func (c *Core) ExpireAt(d tokenledger.Date) time.Time {
	return d.Time().AddDate(0, 0, c.retention+1)
}

// fail wraps err from a failed round trip of op: the context's error when
// ctx ended, otherwise ErrUnavailable.
func (c *Core) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %s: %w", c.server, op, cerr)
	}
	return fmt.Errorf("%s: %s: %w: %w", c.server, op, tokenledger.ErrUnavailable, err)
}

// replyFail wraps a Redis error reply to op: ErrUnavailable when the server
// cannot serve now, a plain error otherwise.
func (c *Core) replyFail(op string, e ReplyError) error {
	if e.Unavailable() {
		return fmt.Errorf("%s: %s: %w: %w", c.server, op, tokenledger.ErrUnavailable, e)
	}
	return fmt.Errorf("%s: %s: %w", c.server, op, e)
}

// do runs cmds in one round trip and checks the reply count.
func (c *Core) do(ctx context.Context, op string, cmds [][]any) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	replies, err := c.doer.Do(ctx, cmds)
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	if len(replies) != len(cmds) {
		return nil, fmt.Errorf("%s: %s: %w: sent %d commands, got %d replies", c.server, op, tokenledger.ErrUnavailable, len(cmds), len(replies))
	}
	return replies, nil
}

// call is one script call: the events (by index into the batch) of one day.
type call struct {
	idx []int
	cmd []any
}

// Add counts each event whose ID is new within its UTC day, in one round
// trip: the events are grouped by day, each day's events go into one script
// call (or more, past MaxEventsPerCall), and the calls are pipelined. When
// the server has lost the script (NOSCRIPT), the affected calls are sent
// again with the script's source, which loads it. An event whose day has
// already expired (start of D + R + 1 is past) is not written and is
// reported as not new: its keys would vanish at once. An event without an
// ID or Timestamp, or with a counter the script cannot add (negative, or
// above tokenledger.MaxTokens or MaxEventCost), fails the whole call with
// a *tokenledger.ValidationError before anything is sent; the other rules
// of the contract are the Service's.
func (c *Core) Add(ctx context.Context, events []tokenledger.Event) (tokenledger.AddResult, error) {
	op := fmt.Sprintf("add %d events", len(events))
	if err := ctx.Err(); err != nil {
		return tokenledger.AddResult{}, fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	res := tokenledger.AddResult{New: make([]bool, len(events))}
	calls, err := c.buildCalls(events)
	if err != nil {
		return tokenledger.AddResult{}, err
	}
	if len(calls) == 0 {
		return res, nil
	}
	cmds := make([][]any, len(calls))
	for i := range calls {
		cmds[i] = calls[i].cmd
	}
	replies, err := c.do(ctx, op, cmds)
	if err != nil {
		return tokenledger.AddResult{}, err
	}
	var retry []call
	for i, r := range replies {
		if e, ok := r.(ReplyError); ok && e.Code() == "NOSCRIPT" {
			retry = append(retry, calls[i])
			continue
		}
		if err := c.readAddReply(op, r, calls[i].idx, res.New); err != nil {
			return tokenledger.AddResult{}, err
		}
	}
	if len(retry) > 0 {
		cmds = cmds[:0]
		for _, cl := range retry {
			src := slices.Clone(cl.cmd)
			src[0], src[1] = "EVAL", addScript
			cmds = append(cmds, src)
		}
		replies, err := c.do(ctx, op+" (loading the script)", cmds)
		if err != nil {
			return tokenledger.AddResult{}, err
		}
		for i, r := range replies {
			if err := c.readAddReply(op, r, retry[i].idx, res.New); err != nil {
				return tokenledger.AddResult{}, err
			}
		}
	}
	return res, nil
}

// readAddReply stores the script's per-event answers into isNew.
func (c *Core) readAddReply(op string, r any, idx []int, isNew []bool) error {
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

// buildCalls validates events and groups them into script calls, one per
// day (split past MaxEventsPerCall), in order of first appearance; the
// events of one day keep their order. Days already expired are left out.
func (c *Core) buildCalls(events []tokenledger.Event) ([]call, error) {
	type group struct {
		day *dayKeys
		idx []int
	}
	var groups []group
	now := c.now().Unix()
	for i := range events {
		e := &events[i]
		if e.ID == "" {
			return nil, &tokenledger.ValidationError{Index: i, Field: "id", Msg: "is required by the store"}
		}
		if e.Timestamp.IsZero() {
			return nil, &tokenledger.ValidationError{Index: i, Field: "timestamp", Msg: "is required by the store"}
		}
		if err := checkCounters(i, e); err != nil {
			return nil, err
		}
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
				continue // expired: see Add
			}
			g = len(groups)
			groups = append(groups, group{day: c.dayKeysOf(day, e.Timestamp)})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	var calls []call
	for _, g := range groups {
		for start := 0; start < len(g.idx); start += MaxEventsPerCall {
			idx := g.idx[start:min(start+MaxEventsPerCall, len(g.idx))]
			n := len(idx)
			cmd := make([]any, 0, 3+DayKeys+KeysPerEvent*n+1+ArgsPerEvent*n+1)
			cmd = append(cmd, "EVALSHA", addSHA, strconv.Itoa(DayKeys+KeysPerEvent*n))
			cmd = append(cmd, g.day.keys[:]...)
			fields := make([]string, n)
			for j, i := range idx {
				id := events[i].ID
				fields[j] = ClaimField(id)
				cmd = append(cmd, g.day.claim+id, g.day.buckets[ClaimBucket(fields[j])])
			}
			cmd = append(cmd, g.day.exp)
			for j, i := range idx {
				e := &events[i]
				cmd = append(cmd, e.Model, e.UserID, e.SessionID,
					e.PromptTokens, e.CompletionTokens, e.TotalTokens,
					e.CacheReadTokens, e.CacheWriteTokens, e.ReasoningTokens, int64(e.Cost), sourceCodes[e.Pricing],
					fields[j])
			}
			if c.tokens {
				cmd = append(cmd, newClaimToken())
			}
			calls = append(calls, call{idx: idx, cmd: cmd})
		}
	}
	return calls, nil
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
	exp     int64
}

// dayKeysOf returns the dayKeys of day (the UTC day of t). The last day
// asked for is kept: concurrent calls are nearly all for today.
func (c *Core) dayKeysOf(day int64, t time.Time) *dayKeys {
	if d := c.lastDay.Load(); d != nil && d.day == day {
		return d
	}
	date := tokenledger.DateOf(t)
	d := &dayKeys{day: day, claim: c.keys.ID(date, ""), exp: c.expireAt(day), buckets: make([]string, ClaimBuckets)}
	for b := range d.buckets {
		d.buckets[b] = c.keys.Bucket(date, b)
	}
	for i, kind := range [DayKeys]string{KindTotals, KindModels, KindUsers, KindUserSet, KindSessions} {
		d.keys[i] = c.keys.Day(date, kind)
	}
	c.lastDay.Store(d)
	return d
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
func (c *Core) expireAt(day int64) int64 {
	return (day + int64(c.retention) + 1) * 86400
}

// checkCounters rejects what the script cannot count: a token field
// outside 0..MaxTokens or a cost outside 0..MaxEventCost. The other rules
// of the contract are the Service's to enforce.
func checkCounters(i int, e *tokenledger.Event) error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"promptTokens", e.PromptTokens}, {"completionTokens", e.CompletionTokens},
		{"cacheReadTokens", e.CacheReadTokens}, {"cacheWriteTokens", e.CacheWriteTokens},
		{"reasoningTokens", e.ReasoningTokens}, {"totalTokens", e.TotalTokens},
	} {
		if f.v < 0 || f.v > tokenledger.MaxTokens {
			return &tokenledger.ValidationError{Index: i, Field: f.name, Msg: fmt.Sprintf("must be an integer from 0 to %d", int64(tokenledger.MaxTokens))}
		}
	}
	if e.Cost < 0 || e.Cost > tokenledger.MaxEventCost {
		return &tokenledger.ValidationError{Index: i, Field: "costUsd", Msg: "must be from 0 to 1000000 dollars"}
	}
	if int(e.Pricing) >= len(sourceCodes) {
		return &tokenledger.ValidationError{Index: i, Field: "pricing", Msg: "must be client, table or unpriced"}
	}
	return nil
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

// nodeError carries an error of fn through ForEachNode unchanged.
type nodeError struct{ err error }

func (e *nodeError) Error() string { return e.err.Error() }

// nodes calls fn for every master (or the Doer itself when it is not a
// Nodes), concurrently, and returns the first error fn returned, or a
// wrapped error when the masters could not be listed.
func (c *Core) nodes(ctx context.Context, op string, fn func(ctx context.Context, d Doer) error) error {
	n, ok := c.doer.(Nodes)
	if !ok {
		return fn(ctx, c.doer)
	}
	err := n.ForEachNode(ctx, func(ctx context.Context, d Doer) error {
		if err := fn(ctx, d); err != nil {
			return &nodeError{err}
		}
		return nil
	})
	var ne *nodeError
	if errors.As(err, &ne) {
		return ne.err
	}
	if err != nil {
		return c.fail(ctx, op+": list the masters", err)
	}
	return nil
}

// Reset deletes every key under the prefix, on every master: SCAN with
// MATCH "<prefix>:{*" and UNLINK of what it finds, grouped by hash slot,
// each UNLINK batch pipelined with the next SCAN. It never uses FLUSHDB or
// KEYS, and leaves every other key alone.
//
// Before deleting anything it records the time (see LastReset), so that
// events another instance spooled before the reset, and delivers after
// it, are dropped rather than brought back.
func (c *Core) Reset(ctx context.Context) error {
	const op = "reset"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	ttl := int64(c.retention+1) * 24 * 3600
	stamp, err := c.markReset(ctx, op, ttl) // by the database's clock: see resetclock.go
	if err != nil {
		return err
	}
	if c.cache != nil {
		c.cache.clear()
	}
	if err := c.nodes(ctx, op, c.resetNode); err != nil {
		return err
	}
	// The same time under a second marker says the deletion finished: until
	// then no reader keeps what it reads (see dayCache).
	replies, err := c.do(ctx, op, [][]any{{"SET", c.keys.Mark(resetDoneMark), stamp, "EX", ttl}})
	if err != nil {
		return err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return c.replyFail(op+": record that it finished", e)
	}
	return nil
}

// resetMark names the marker that holds the time of the last Reset, in
// Unix milliseconds.
const resetMark = "reset"

// resetDoneMark names the marker a Reset sets to the same time once its
// deletion finished; while it differs from resetMark's, a reset is under
// way (or died half-way) and reads are not cached.
const resetDoneMark = "resetdone"

// LastReset returns when Reset last ran (by the database's clock), the zero time when it did not within the last R + 1 days.
// Errors are as for Check; a marker that does not hold a time is an error
// naming the key.
func (c *Core) LastReset(ctx context.Context) (time.Time, error) {
	const op = "read the time of the last reset"
	key := c.keys.Mark(resetMark)
	replies, err := c.do(ctx, op, [][]any{{"GET", key}})
	if err != nil {
		return time.Time{}, err
	}
	switch r := replies[0].(type) {
	case nil:
		return time.Time{}, nil
	case ReplyError:
		return time.Time{}, c.replyFail(op, r)
	}
	ms, err := toInt(replies[0])
	if err != nil || ms < 0 {
		return time.Time{}, fmt.Errorf("%s: %s: key %s does not hold a time in Unix milliseconds", c.server, op, key)
	}
	return time.UnixMilli(ms).UTC(), nil
}

func (c *Core) resetNode(ctx context.Context, d Doer) error {
	const op = "reset"
	cursor := "0"
	var unlink [][]any // the previous page's deletions, sent with the next SCAN
	for {
		cmds := append(slices.Clip(unlink), []any{"SCAN", cursor, "MATCH", c.keys.Pattern(), "COUNT", int64(scanCount)})
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %s: %w", c.server, op, err)
		}
		replies, err := d.Do(ctx, cmds)
		if err != nil {
			return c.fail(ctx, op, err)
		}
		if len(replies) != len(cmds) {
			return fmt.Errorf("%s: %s: %w: sent %d commands, got %d replies", c.server, op, tokenledger.ErrUnavailable, len(cmds), len(replies))
		}
		for _, r := range replies[:len(unlink)] {
			if e, ok := r.(ReplyError); ok {
				return c.replyFail(op+": UNLINK", e)
			}
		}
		scan := replies[len(replies)-1]
		if e, ok := scan.(ReplyError); ok {
			return c.replyFail(op+": SCAN", e)
		}
		arr, ok := scan.([]any)
		if !ok || len(arr) != 2 {
			return fmt.Errorf("%s: %s: SCAN answered %T, want a cursor and a list of keys", c.server, op, scan)
		}
		next, ok1 := arr[0].(string)
		keys, ok2 := arr[1].([]any)
		if !ok1 || (!ok2 && arr[1] != nil) {
			return fmt.Errorf("%s: %s: SCAN answered a %T cursor and %T keys", c.server, op, arr[0], arr[1])
		}
		// Redis always moves the cursor on; one that comes back as sent
		// would make this loop forever (a broken or hostile server, or a
		// proxy repeating a cached answer).
		if next == cursor && next != "0" {
			return fmt.Errorf("%s: %s: SCAN answered the cursor %.40q it was given, so the scan would never end", c.server, op, next)
		}
		// Group by hash tag: a multi-key UNLINK must stay within one slot.
		bySlot := map[string][]any{}
		var order []string
		for _, k := range keys {
			ks, ok := k.(string)
			if !ok || !c.keys.Owns(ks) {
				continue
			}
			tag := HashTag(ks)
			if _, seen := bySlot[tag]; !seen {
				order = append(order, tag)
				bySlot[tag] = []any{"UNLINK"}
			}
			bySlot[tag] = append(bySlot[tag], ks)
		}
		unlink = nil
		for _, tag := range order {
			unlink = append(unlink, bySlot[tag])
		}
		if next == "0" {
			if len(unlink) == 0 {
				return nil
			}
			replies, err := d.Do(ctx, unlink)
			if err != nil {
				return c.fail(ctx, op, err)
			}
			for _, r := range replies {
				if e, ok := r.(ReplyError); ok {
					return c.replyFail(op+": UNLINK", e)
				}
			}
			return nil
		}
		cursor = next
	}
}

// Check writes a probe key under the prefix (with a short expiry), reads it
// back and deletes it, in one round trip. It touches no usage data.
func (c *Core) Check(ctx context.Context) error {
	const op = "check"
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:8])
	value := hex.EncodeToString(b[8:])
	key := c.keys.Probe(token)
	replies, err := c.do(ctx, op, [][]any{
		{"SET", key, value, "PX", probeTTL.Milliseconds()},
		{"GET", key},
		{"UNLINK", key},
	})
	if err != nil {
		return err
	}
	for i, r := range replies {
		if e, ok := r.(ReplyError); ok {
			return c.replyFail(fmt.Sprintf("%s: %s", op, [...]string{"write", "read", "delete"}[i]), e)
		}
	}
	if replies[0] != "OK" {
		return fmt.Errorf("%s: %s: writing probe key %s answered %v, want OK", c.server, op, key, replies[0])
	}
	if replies[1] != value {
		return fmt.Errorf("%s: %s: probe key %s read back %v, want what was written", c.server, op, key, replies[1])
	}
	return nil
}

// HasMark reports whether SetMark(name) was called within the last R + 1
// days (see Keys.Mark). Errors are as for Check.
func (c *Core) HasMark(ctx context.Context, name string) (bool, error) {
	const op = "read marker"
	replies, err := c.do(ctx, op, [][]any{{"EXISTS", c.keys.Mark(name)}})
	if err != nil {
		return false, err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return false, c.replyFail(op, e)
	}
	n, err := toInt(replies[0])
	if err != nil {
		return false, fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	return n == 1, nil
}

// SetMark records name for R + 1 days, after which whatever it marked
// (an imported file) has expired anyway. Errors are as for Check.
func (c *Core) SetMark(ctx context.Context, name string) error {
	const op = "write marker"
	ttl := int64(c.retention+1) * 24 * 3600
	replies, err := c.do(ctx, op, [][]any{{"SET", c.keys.Mark(name), "1", "EX", ttl}})
	if err != nil {
		return err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return c.replyFail(op, e)
	}
	return nil
}

// LoadScript loads the add script on every master (SCRIPT LOAD), so that
// the first Add need not send its source. Add works without it: it loads
// the script itself on NOSCRIPT.
func (c *Core) LoadScript(ctx context.Context) error {
	const op = "load script"
	return c.nodes(ctx, op, func(ctx context.Context, d Doer) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %s: %w", c.server, op, err)
		}
		replies, err := d.Do(ctx, [][]any{{"SCRIPT", "LOAD", addScript}})
		if err != nil {
			return c.fail(ctx, op, err)
		}
		if len(replies) != 1 {
			return fmt.Errorf("%s: %s: %w: got %d replies to one command", c.server, op, tokenledger.ErrUnavailable, len(replies))
		}
		if e, ok := replies[0].(ReplyError); ok {
			return c.replyFail(op, e)
		}
		if replies[0] != addSHA {
			return fmt.Errorf("%s: %s: the server named the script %v, want %s", c.server, op, replies[0], addSHA)
		}
		return nil
	})
}
