package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
)

// threeDays returns events over today, yesterday and 30 days ago, with
// users, sessions and costs, so that every kind of key is written.
func threeDays(now time.Time) []tokenledger.Event {
	var evs []tokenledger.Event
	for i, back := range []int{0, 1, 30} {
		ts := now.Add(-time.Duration(back) * 24 * time.Hour)
		for j := range 4 {
			e := event(fmt.Sprintf("k-%d-%d", i, j), ts, fmt.Sprintf("m%d", j%2), fmt.Sprintf("u%d", j), fmt.Sprintf("s%d", j), 10, 5)
			e.Cost = tokenledger.Nanos(1000 + j)
			e.CacheReadTokens = 2
			evs = append(evs, e)
		}
	}
	return evs
}

// TestKeysShareTheDaysHashTag: every key a day's events write carries that
// day's hash tag, so one script call touches one cluster slot; and the
// layout is the documented one.
func TestKeysShareTheDaysHashTag(t *testing.T) {
	srv := redistest.Shared(t)
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	evs := threeDays(now)
	if _, err := s.Add(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	keys := scanKeys(t, raw(t, srv.Addr()), s.Prefix()+":*")
	perDay := map[string]int{}
	for _, k := range keys {
		tag := redis.HashTag(k)
		if _, err := tokenledger.ParseDate(tag); err != nil {
			t.Errorf("key %q has hash tag %q, want a date", k, tag)
			continue
		}
		want := s.Prefix() + ":{" + tag + "}:"
		if !strings.HasPrefix(k, want) {
			t.Errorf("key %q does not start with %q", k, want)
		}
		perDay[tag]++
	}
	// Per day: totals, models, users, userset, sessions and 4 claim
	// hashes (the day's 4 ids fall in 4 buckets).
	for _, back := range []int{0, 1, 30} {
		d := string(tokenledger.DateOf(now.Add(-time.Duration(back) * 24 * time.Hour)))
		if perDay[d] != 9 {
			t.Errorf("day %s has %d keys, want 9 (5 aggregates + 4 claim hashes): %v", d, perDay[d], keys)
		}
	}
	if len(perDay) != 3 {
		t.Errorf("keys span %d days, want 3", len(perDay))
	}
}

// TestExpireAtStartOfDayPlusRPlusOne: every key of day D, claims included,
// expires at the start of day D + R + 1, for two retentions.
func TestExpireAtStartOfDayPlusRPlusOne(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	now := noon()
	for _, r := range []int{90, 45} {
		t.Run(fmt.Sprint(r), func(t *testing.T) {
			s := open(t, redis.RedisOptions{URL: srv.URL(), RetentionDays: r})
			if _, err := s.Add(context.Background(), threeDays(now)); err != nil {
				t.Fatal(err)
			}
			keys := scanKeys(t, c, s.Prefix()+":*")
			if len(keys) != 27 {
				t.Fatalf("found %d keys, want 27", len(keys))
			}
			for _, k := range keys {
				d := tokenledger.Date(redis.HashTag(k))
				want := d.Time().AddDate(0, 0, r+1).Unix()
				got, err := c.Do(context.Background(), "EXPIRETIME", k).Int64()
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("EXPIRETIME %s = %s, want %s (start of D+%d+1)", k, time.Unix(got, 0).UTC(), time.Unix(want, 0).UTC(), r)
				}
			}
		})
	}
}

// TestResetLeavesOtherPrefixesAlone: Reset deletes every key of its prefix
// and nothing else, including a longer prefix that starts with it, on a
// single server and on a cluster.
func TestResetLeavesOtherPrefixesAlone(t *testing.T) {
	now := noon()
	check := func(t *testing.T, opts redis.RedisOptions, c goredis.Cmdable, scan func(pattern string) []string) {
		ctx := context.Background()
		base := redistest.Prefix()
		opts.KeyPrefix = base
		mine := open(t, opts)
		opts.KeyPrefix = base + ":x" // a longer prefix that starts with ours
		longer := open(t, opts)
		opts.KeyPrefix = base + "x"
		other := open(t, opts)
		for _, s := range []*redis.Store{mine, longer, other} {
			if _, err := s.Add(ctx, threeDays(now)); err != nil {
				t.Fatal(err)
			}
		}
		// Many days, so that SCAN needs several pages on a server.
		var many []tokenledger.Event
		for i := range 1500 {
			many = append(many, event(fmt.Sprintf("many-%d", i), now.Add(-time.Duration(i%60)*24*time.Hour), "m", "", "", 1, 1))
		}
		if _, err := mine.Add(ctx, many); err != nil {
			t.Fatal(err)
		}
		unrelated := base + "-unrelated"
		if err := c.Set(ctx, unrelated, "keep", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		before := len(scan(base + "*"))
		if err := mine.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if left := scan(base + ":{*"); len(left) != 0 {
			t.Errorf("after Reset %d keys of the prefix remain, e.g. %s", len(left), left[0])
		}
		after := scan(base + "*")
		// Those of the two other prefixes, the unrelated key and the
		// two markers that record the time of the reset and its end.
		if want := 27 + 27 + 1 + 2; len(after) != want {
			t.Errorf("after Reset %d other keys remain, want %d (of %d before)", len(after), want, before)
		}
		if v, err := c.Get(ctx, unrelated).Result(); err != nil || v != "keep" {
			t.Errorf("unrelated key: %q, %v", v, err)
		}
		days, err := longer.Days(ctx, tokenledger.DayQuery{From: tokenledger.DateOf(now).AddDays(-90), To: tokenledger.DateOf(now)})
		if err != nil || len(days) != 3 {
			t.Errorf("the longer prefix's store reads %d days (%v), want 3", len(days), err)
		}
	}
	t.Run("server", func(t *testing.T) {
		srv := redistest.Shared(t)
		c := raw(t, srv.Addr())
		check(t, redis.RedisOptions{URL: srv.URL()}, c, func(p string) []string { return scanKeys(t, c, p) })
	})
	t.Run("cluster", func(t *testing.T) {
		cl := redistest.SharedCluster(t)
		c := rawCluster(t, cl.Addrs())
		check(t, redis.RedisOptions{ClusterNodes: cl.Addrs()}, c, func(p string) []string {
			var all []string
			for _, a := range cl.Addrs() {
				all = append(all, scanKeys(t, raw(t, a), p)...)
			}
			return all
		})
	})
}

// TestNoScriptRecovered: after SCRIPT FLUSH the next Add loads the script
// again by itself (EVAL) and counts exactly; later Adds use EVALSHA again.
func TestNoScriptRecovered(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	if _, err := s.Add(ctx, []tokenledger.Event{event("ns-1", now, "m", "u", "s", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	evalsBefore := commandCalls(t, c, "eval")
	res, err := s.Add(ctx, []tokenledger.Event{event("ns-1", now, "m", "u", "s", 1, 1), event("ns-2", now, "m", "u", "s", 1, 1), event("ns-3", now.Add(-24*time.Hour), "m", "u", "s", 1, 1)})
	if err != nil {
		t.Fatalf("Add after SCRIPT FLUSH: %v", err)
	}
	if got, want := fmt.Sprint(res.New), "[false true true]"; got != want {
		t.Errorf("New = %s, want %s", got, want)
	}
	if got := commandCalls(t, c, "eval") - evalsBefore; got != 2 {
		t.Errorf("EVAL calls after NOSCRIPT = %d, want 2 (one per day)", got)
	}
	shaBefore := commandCalls(t, c, "evalsha")
	if _, err := s.Add(ctx, []tokenledger.Event{event("ns-4", now, "m", "u", "s", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	if commandCalls(t, c, "evalsha") != shaBefore+1 {
		t.Errorf("the Add after recovery did not use EVALSHA")
	}
	days, err := s.Days(ctx, tokenledger.DayQuery{From: tokenledger.DateOf(now).AddDays(-1), To: tokenledger.DateOf(now)})
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 2 || days[1].RequestCount != 3 || days[0].RequestCount != 1 {
		t.Errorf("days after recovery = %+v", days)
	}
}

// TestNoScriptRecoveredOnCluster: the same on a cluster whose masters all
// lost the script.
func TestNoScriptRecoveredOnCluster(t *testing.T) {
	cl := redistest.SharedCluster(t)
	ctx := context.Background()
	s := open(t, redis.RedisOptions{ClusterNodes: cl.Addrs()})
	for _, a := range cl.Addrs() {
		if err := raw(t, a).ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	now := noon()
	var evs []tokenledger.Event
	for i := range 30 { // 30 days: every master owns some
		evs = append(evs, event(fmt.Sprintf("nsc-%d", i), now.Add(-time.Duration(i)*24*time.Hour), "m", "u", "s", 1, 1))
	}
	res, err := s.Add(ctx, evs)
	if err != nil {
		t.Fatalf("Add after SCRIPT FLUSH on every master: %v", err)
	}
	if res.Accepted() != 30 {
		t.Errorf("accepted %d, want 30", res.Accepted())
	}
}

// TestBatchIsOneRoundTrip: a batch over three days is one pipelined round
// trip carrying one EVALSHA per day, and reading 91 days is one round trip;
// on a cluster, at most one round trip per master.
func TestBatchIsOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	now := noon()
	today := tokenledger.DateOf(now)
	var days91 []tokenledger.Event
	for i := range 91 {
		days91 = append(days91, event(fmt.Sprintf("rt91-%d", i), now.Add(-time.Duration(i)*24*time.Hour), "m", "u", "s", 1, 1))
	}

	t.Run("server", func(t *testing.T) {
		srv := redistest.Server(t)
		c := raw(t, srv.Addr())
		tc := newTripCounter()
		s := open(t, redis.RedisOptions{URL: srv.URL(), Dialer: tc.dial, PoolSize: 1})
		// Warm the pipeline connection: a new connection's handshake is
		// a round trip of its own.
		if _, err := s.Add(ctx, threeDays(now.Add(-48*time.Hour))); err != nil {
			t.Fatal(err)
		}
		tc.reset()
		sha := commandCalls(t, c, "evalsha")
		if _, err := s.Add(ctx, threeDays(now)); err != nil {
			t.Fatal(err)
		}
		if got := total(tc.count("")); got != 1 {
			t.Errorf("a batch of 12 events over 3 days took %d round trips, want 1", got)
		}
		if got := commandCalls(t, c, "evalsha") - sha; got != 3 {
			t.Errorf("the batch ran %d EVALSHA, want 3 (one per day)", got)
		}
		if _, err := s.Add(ctx, days91); err != nil {
			t.Fatal(err)
		}
		tc.reset()
		days, err := s.Days(ctx, tokenledger.DayQuery{From: today.AddDays(-90), To: today, Users: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 91 {
			t.Fatalf("read %d days, want 91", len(days))
		}
		// The first read asks for every day's request count, then reads the
		// days whole; the next, with nothing written, only asks; after a
		// write to one day, it reads that day whole again.
		if got := total(tc.count("")); got != 2 {
			t.Errorf("reading 91 days the first time took %d round trips, want 2", got)
		}
		for _, c := range []struct {
			write          bool
			trips, hgetall int
		}{{false, 1, 0}, {true, 2, 3}} {
			if c.write {
				if _, err := s.Add(ctx, []tokenledger.Event{event("one-more", now, "m", "u", "", 1, 1)}); err != nil {
					t.Fatal(err)
				}
			}
			tc.reset()
			days, err = s.Days(ctx, tokenledger.DayQuery{From: today.AddDays(-90), To: today, Users: true})
			if err != nil || len(days) != 91 {
				t.Fatalf("read %d days, %v", len(days), err)
			}
			if got := total(tc.count("")); got != c.trips {
				t.Errorf("reading 91 days again (after a write: %v) took %d round trips, want %d", c.write, got, c.trips)
			}
			if got := tc.commands("HGETALL"); got != c.hgetall {
				t.Errorf("reading 91 days again (after a write: %v) sent %d HGETALL, want %d (the totals, models and users of the day written)", c.write, got, c.hgetall)
			}
		}
	})

	t.Run("cluster", func(t *testing.T) {
		cl := redistest.SharedCluster(t)
		tc := newTripCounter()
		s := open(t, redis.RedisOptions{ClusterNodes: cl.Addrs(), Dialer: tc.dial, PoolSize: 1})
		if _, err := s.Add(ctx, days91); err != nil { // warms a connection to every master
			t.Fatal(err)
		}
		tc.reset()
		if _, err := s.Add(ctx, days91); err != nil {
			t.Fatal(err)
		}
		per := tc.count("EVALSHA")
		if len(per) != 3 {
			t.Errorf("91 days of events went to %d masters, want 3", len(per))
		}
		for addr, n := range per {
			if n != 1 {
				t.Errorf("a batch over 91 days took %d round trips to %s, want 1", n, addr)
			}
		}
		tc.reset()
		days, err := s.Days(ctx, tokenledger.DayQuery{From: today.AddDays(-90), To: today})
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 91 {
			t.Fatalf("read %d days, want 91", len(days))
		}
		// Asking for the request counts, then the days whole: each one
		// round trip to each master.
		for _, marker := range []string{"HGET\r", "HGETALL"} {
			per = tc.count(marker)
			for addr, n := range per {
				if n != 1 {
					t.Errorf("reading 91 days took %d round trips with %s to %s, want 1", n, marker, addr)
				}
			}
			if len(per) != 3 {
				t.Errorf("reading 91 days asked %d masters with %s, want 3", len(per), marker)
			}
		}
	})
}

// TestClaimAndCountersTogether: when a precondition fails (a key of the
// wrong type, a counter that would overflow), the script writes nothing:
// no claim without its counters, and a retry after the fix counts once.
func TestClaimAndCountersTogether(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	day := tokenledger.DateOf(now)
	key := func(kind string) string { return s.Prefix() + ":{" + string(day) + "}:" + kind }
	evs := []tokenledger.Event{event("ct-1", now, "m", "u", "s", 1, 1), event("ct-2", now, "m", "u2", "s", 1, 1)}

	if err := c.Set(ctx, key("sessions"), "not a set", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Add(ctx, evs)
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Add over a string at the sessions key: err = %v, want WRONGTYPE", err)
	}
	if keys := scanKeys(t, c, s.Prefix()+":*"); len(keys) != 1 {
		t.Errorf("a failed script call left keys behind: %v", keys)
	}
	c.Del(ctx, key("sessions"))

	if err := c.HSet(ctx, key("totals"), "t", "4611686018427387900").Err(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Add(ctx, evs)
	var oe *tokenledger.CounterOverflowError
	if !errors.As(err, &oe) || oe.Counter != "totalTokens" || oe.Date != day || !errors.Is(err, tokenledger.ErrInvalid) {
		t.Fatalf("Add that would overflow: err = %v, want a CounterOverflowError for totalTokens of %s", err, day)
	}
	if keys := scanKeys(t, c, s.Prefix()+":*"); len(keys) != 1 {
		t.Errorf("a refused script call left keys behind: %v", keys)
	}
	c.Del(ctx, key("totals"))

	res, err := s.Add(ctx, evs)
	if err != nil || res.Accepted() != 2 {
		t.Fatalf("retry after the fix: accepted %d, err %v; want 2, nil", res.Accepted(), err)
	}
}

// TestForeignCounterValuesClaimNothing: a counter field the call would
// write that holds something HINCRBY refuses (written by hand or by another
// program), or a value the call would take past 2^62, fails the call
// before its first write — totals, models and users alike — so no id is
// claimed without its counters, and the same events count once after the
// field is repaired.
func TestForeignCounterValuesClaimNothing(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	now := noon()
	day := tokenledger.DateOf(now)
	for _, tc := range []struct {
		kind, field, value, want string
	}{
		{"totals", "n", "many", "does not hold an integer"},
		{"totals", "$", "1.5", "does not hold an integer"},
		{"models", "t|m2", "x", "does not hold an integer"},
		{"models", "n|m2", "007", "does not hold an integer"},
		{"models", "$|m2", "4611686018427387900", "counter costUsd of day"},
		{"users", "p|u2", " 1", "does not hold an integer"},
		{"totals", "t", "-9999999999999999999", "does not hold an integer"},
		{"models", "t|m2", "-5", "does not hold an integer"},
		{"users", "c|u2", "-9223372036854775808", "does not hold an integer"},
		{"users", "c|u2", "4611686018427387903", "counter completionTokens of day"},
	} {
		t.Run(tc.kind+" "+tc.field+" "+tc.value, func(t *testing.T) {
			s := open(t, redis.RedisOptions{URL: srv.URL()})
			key := func(kind string) string { return s.Prefix() + ":{" + string(day) + "}:" + kind }
			evs := []tokenledger.Event{event("fc-1", now, "m", "u", "s", 1, 1), event("fc-2", now, "m2", "u2", "s", 1, 1)}
			evs[1].Cost = 5
			if err := c.HSet(ctx, key(tc.kind), tc.field, tc.value).Err(); err != nil {
				t.Fatal(err)
			}
			_, err := s.Add(ctx, evs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add: err = %v, want %q", err, tc.want)
			}
			if keys := scanKeys(t, c, s.Prefix()+":*"); len(keys) != 1 {
				t.Errorf("the refused call left keys behind: %v", keys)
			}
			c.HDel(ctx, key(tc.kind), tc.field)
			res, err := s.Add(ctx, evs)
			if err != nil || res.Accepted() != 2 {
				t.Fatalf("retry after the repair: accepted %d, err %v; want 2, nil", res.Accepted(), err)
			}
			got, err := s.Days(ctx, tokenledger.DayQuery{From: day, To: day, Users: true})
			if err != nil {
				t.Fatal(err)
			}
			if d := got[0]; d.RequestCount != 2 || d.Models["m2"].RequestCount != 1 || d.Users["u2"].RequestCount != 1 {
				t.Errorf("after the retry: %d requests, model m2 %+v, user u2 %+v; want 2, 1, 1", d.RequestCount, d.Models["m2"], d.Users["u2"])
			}
		})
	}
}

// TestScriptRefusesMalformedCalls: a call from a confused client (wrong
// argument count, a value HINCRBY would refuse) fails before any write.
func TestScriptRefusesMalformedCalls(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	p := redistest.Prefix()
	day := "{2026-11-27}"
	old, bucket, field := claimOf(p, "2026-11-27", "a")
	keys := []string{p + ":" + day + ":totals", p + ":" + day + ":models", p + ":" + day + ":users", p + ":" + day + ":userset", p + ":" + day + ":sessions", old, bucket}
	exp := time.Now().Add(time.Hour).Unix()
	for name, args := range map[string][]any{
		"too few":      {exp, "m", "u", "s", 1, 1, 2},
		"v5's shape":   {exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0},
		"v6's shape":   {exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt"},
		"exponent":     {exp, "m", "u", "s", "1e5", 1, 2, 0, 0, 0, 0, "", field},
		"negative":     {exp, "m", "u", "s", 1, -1, 2, 0, 0, 0, 0, "", field},
		"leading zero": {exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, "07", "", field},
		"huge":         {exp, "m", "u", "s", 1, 1, "99999999999999999", 0, 0, 0, 0, "", field},
		"price source": {exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "table", field},
	} {
		err := c.Eval(ctx, redis.AddScript(), keys, args...).Err()
		if err == nil || !strings.Contains(err.Error(), "tokenledger add") {
			t.Errorf("%s: err = %v, want the script's refusal", name, err)
		}
	}
	// v6's keys (one claim key per event) with v7's values.
	if err := c.Eval(ctx, redis.AddScript(), keys[:6], exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt", field).Err(); err == nil || !strings.Contains(err.Error(), "tokenledger add") {
		t.Errorf("v6's keys: err = %v, want the script's refusal", err)
	}
	if left := scanKeys(t, c, p+":*"); len(left) != 0 {
		t.Errorf("refused calls wrote %v", left)
	}
	// The same call, well formed, counts.
	got, err := c.Eval(ctx, redis.AddScript(), keys, exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt", field).Result()
	if err != nil || fmt.Sprint(got) != "[1]" {
		t.Errorf("well-formed call: %v, %v", got, err)
	}
}

// TestScriptSumsExactly: the script sums the increments of one call per
// hash field; sums must be exact integers, also past 2^53 where Lua's
// doubles round (each value is then added on its own), and fields must
// hold exactly what one HINCRBY per event and field would leave.
func TestScriptSumsExactly(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	p := redistest.Prefix()
	day := "{2026-11-27}"
	k := func(kind string) string { return p + ":" + day + ":" + kind }
	exp := time.Now().Add(time.Hour).Unix()
	// Per event: model, user, session, prompt, completion, total, cache
	// read, cache write, reasoning, cost, price source.
	evs := [][]any{
		{"m", "u", "s", "1", "2", "4503599627370497", "0", "0", "0", "9007199254740993", "pt"},
		{"m", "u", "s", "3", "4", "4503599627370497", "0", "0", "0", "1", "pc"},
		{"m", "", "", "5", "0", "9999999999999999", "7", "0", "0", "9999999999999999", "pu"},
		{"m2", "u", "s2", "0", "0", "0", "0", "0", "0", "0", ""},
	}
	keys := []string{k("totals"), k("models"), k("users"), k("userset"), k("sessions")}
	args := []any{exp}
	for i, e := range evs {
		old, bucket, field := claimOf(p, "2026-11-27", fmt.Sprint(i))
		keys = append(keys, old, bucket)
		args = append(append(args, e...), field)
	}
	got, err := c.Eval(ctx, redis.AddScript(), keys, args...).Result()
	if err != nil || fmt.Sprint(got) != "[1 1 1 1]" {
		t.Fatalf("script: %v, %v", got, err)
	}
	want := map[string]map[string]string{
		"totals": {"t": "19007199254740993", "p": "9", "c": "6", "n": "4", "cr": "7", "$": "19007199254740993", "pc": "1", "pt": "1", "pu": "1"},
		"models": {"t|m": "19007199254740993", "p|m": "9", "c|m": "6", "n|m": "3", "$|m": "19007199254740993",
			"pc|m": "1", "pt|m": "1", "pu|m": "1", "t|m2": "0", "p|m2": "0", "c|m2": "0", "n|m2": "1"},
		"users": {"t|u": "9007199254740994", "p|u": "4", "c|u": "6", "n|u": "3", "$|u": "9007199254740994", "pc|u": "1", "pt|u": "1"},
	}
	for kind, w := range want {
		h, err := c.HGetAll(ctx, k(kind)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(h) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", kind, h, w)
		}
	}
	if m, _ := c.SMembers(ctx, k("userset")).Result(); fmt.Sprint(m) != "[u]" {
		t.Errorf("userset = %v, want [u]", m)
	}
	if m, _ := c.SMembers(ctx, k("sessions")).Result(); len(m) != 2 {
		t.Errorf("sessions = %v, want s and s2", m)
	}
	for i, key := range keys {
		if i >= 5 && i%2 == 1 {
			continue // v6 claim keys, which v7 only reads
		}
		if ttl, _ := c.TTL(ctx, key).Result(); ttl <= 0 {
			t.Errorf("%s has no expiry (%v)", key, ttl)
		}
	}
	// The same ids again, and a new one: only the new one counts.
	old, bucket, field := claimOf(p, "2026-11-27", "new")
	keys = append(keys, old, bucket)
	args = append(args, "m", "", "", "1", "1", "2", "0", "0", "0", "0", "pu", field)
	got, err = c.Eval(ctx, redis.AddScript(), keys, args...).Result()
	if err != nil || fmt.Sprint(got) != "[0 0 0 0 1]" {
		t.Fatalf("script again: %v, %v", got, err)
	}
	if n, _ := c.HGet(ctx, k("totals"), "n").Result(); n != "5" {
		t.Errorf("totals n = %s, want 5", n)
	}
	if tt, _ := c.HGet(ctx, k("totals"), "t").Result(); tt != "19007199254740995" {
		t.Errorf("totals t = %s, want 19007199254740995", tt)
	}
}

// TestScriptChecksOnlyWhatItWrites: a key of the wrong type fails a call
// that would write it, before any write, and does not fail a call that
// leaves it alone (no event with a user leaves the users keys alone).
func TestScriptChecksOnlyWhatItWrites(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	p := redistest.Prefix()
	day := "{2026-11-27}"
	k := func(kind string) string { return p + ":" + day + ":" + kind }
	old, bucket, field := claimOf(p, "2026-11-27", "a")
	keys := []string{k("totals"), k("models"), k("users"), k("userset"), k("sessions"), old, bucket}
	exp := time.Now().Add(time.Hour).Unix()
	for i, kind := range []string{"totals", "models", "users", "userset", "sessions", bucket[len(k("")):]} {
		if err := c.Set(ctx, k(kind), "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		// The first call's event counts first, then the call's second
		// event finds its claim hash holding a string: nothing written.
		args := []any{exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt", field}
		ks := keys
		if i == 5 {
			o2, b2, f2 := claimOf(p, "2026-11-27", "a-other-bucket")
			if b2 == bucket {
				t.Fatal("pick another id: same bucket")
			}
			ks = append([]string{k("totals"), k("models"), k("users"), k("userset"), k("sessions"), o2, b2}, old, bucket)
			args = append([]any{exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt", f2}, args[1:]...)
		}
		err := c.Eval(ctx, redis.AddScript(), ks, args...).Err()
		if err == nil || !strings.Contains(err.Error(), "WRONGTYPE tokenledger key "+k(kind)+" holds a string") {
			t.Errorf("%s holds a string: err = %v, want the script's WRONGTYPE", kind, err)
		}
		if left := scanKeys(t, c, p+":*"); len(left) != 1 {
			t.Errorf("%s holds a string: the refused call wrote %v", kind, left)
		}
		c.Del(ctx, k(kind))
	}
	for _, kind := range []string{"users", "userset", "sessions"} {
		if err := c.Set(ctx, k(kind), "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Eval(ctx, redis.AddScript(), keys, exp, "m", "", "", 1, 1, 2, 0, 0, 0, 0, "", field).Result()
	if err != nil || fmt.Sprint(got) != "[1]" {
		t.Errorf("a call without user or session over strings at their keys: %v, %v; want [1]", got, err)
	}
}

// TestClaimTokens: a call with a claim token (as kind kv-rest sends, and
// sends again when a reply was lost) answers 1 for an event whose claim
// holds its own token — counted by its lost attempt — without counting it
// again; an id claimed by anyone else, or at its second place in the call,
// answers 0; a malformed token is refused before any write.
func TestClaimTokens(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	p := redistest.Prefix()
	day := p + ":{2026-11-27}:"
	dayKeys := []string{day + "totals", day + "models", day + "users", day + "userset", day + "sessions"}
	exp := time.Now().Add(time.Hour).Unix()
	call := func(ids []string, token string) (any, error) {
		keys := append(slices.Clone(dayKeys), make([]string, 0, len(ids))...)
		args := []any{exp}
		for _, id := range ids {
			old, bucket, field := claimOf(p, "2026-11-27", id)
			keys = append(keys, old, bucket)
			args = append(args, "m", "u", "s", 1, 2, 3, 0, 0, 0, 0, "pc", field)
		}
		if token != "" {
			args = append(args, token)
		}
		return c.Eval(ctx, redis.AddScript(), keys, args...).Result()
	}
	requests := func() string { return c.HGet(ctx, day+"totals", "n").Val() }
	if err := c.Set(ctx, day+"id:foreign", "x", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, day+"id:hash", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []string{"1234", "01234", "12345678901234567890", "12a45", "-12345"} {
		if _, err := call([]string{"bad"}, bad); err == nil || !strings.Contains(err.Error(), "claim token") {
			t.Errorf("token %q: err = %v, want the script's refusal", bad, err)
		}
	}
	if left := scanKeys(t, c, day+"*"); len(left) != 2 {
		t.Fatalf("refused tokens wrote: %v", left)
	}

	const tok = "4611686018427387000"
	if got, err := call([]string{"a", "b", "a"}, tok); err != nil || fmt.Sprint(got) != "[1 1 0]" {
		t.Fatalf("first attempt: %v, %v; want [1 1 0]", got, err)
	}
	if _, bucket, field := claimOf(p, "2026-11-27", "a"); c.HGet(ctx, bucket, field).Val() != tok {
		t.Errorf("claim holds %q, want the token", c.HGet(ctx, bucket, field).Val())
	}
	if n := requests(); n != "2" {
		t.Fatalf("requestCount %s after the first attempt, want 2", n)
	}
	// The same call again (its reply was lost): reported as counted, not
	// counted again; the ids claimed by others stay duplicates.
	if got, err := call([]string{"a", "b", "a", "foreign", "hash"}, tok); err != nil || fmt.Sprint(got) != "[1 1 0 0 0]" {
		t.Fatalf("second attempt: %v, %v; want [1 1 0 0 0]", got, err)
	}
	if n := requests(); n != "2" {
		t.Fatalf("requestCount %s after the second attempt, want still 2", n)
	}
	// Another call, with another token or none, finds them counted before.
	for _, other := range []string{"12345", ""} {
		if got, err := call([]string{"a", "b"}, other); err != nil || fmt.Sprint(got) != "[0 0]" {
			t.Errorf("token %q: %v, %v; want [0 0]", other, got, err)
		}
	}
	// A claim made without a token holds "1"; a token never matches it.
	if got, err := call([]string{"plain"}, ""); err != nil || fmt.Sprint(got) != "[1]" {
		t.Fatalf("call without a token: %v, %v", got, err)
	}
	if got, err := call([]string{"plain"}, "10000"); err != nil || fmt.Sprint(got) != "[0]" {
		t.Errorf("token against a plain claim: %v, %v; want [0]", got, err)
	}
	if n := requests(); n != "3" {
		t.Errorf("requestCount %s at the end, want 3", n)
	}
}

// TestOverflowOfANameWithSpaces: the script's overflow refusal for a model
// or user whose name has spaces is still the CounterOverflowError every
// store returns (a 400), not an unexplained failure.
func TestOverflowOfANameWithSpaces(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	day := tokenledger.DateOf(now)
	for _, tc := range []struct{ kind, field, counter string }{
		{"models", "p|gpt 4o of mini", "promptTokens"},
		{"users", "t|Ada Lovelace", "totalTokens"},
	} {
		if err := c.HSet(ctx, s.Prefix()+":{"+string(day)+"}:"+tc.kind, tc.field, "4611686018427387900").Err(); err != nil {
			t.Fatal(err)
		}
		_, err := s.Add(ctx, []tokenledger.Event{event("sp-"+tc.kind, now, "gpt 4o of mini", "Ada Lovelace", "s", 100, 1)})
		var oe *tokenledger.CounterOverflowError
		if !errors.As(err, &oe) || oe.Counter != tc.counter || oe.Date != day {
			t.Errorf("%s field %q near 2^62: err = %v, want a CounterOverflowError for %s of %s", tc.kind, tc.field, err, tc.counter, day)
		}
		c.HDel(ctx, s.Prefix()+":{"+string(day)+"}:"+tc.kind, tc.field)
	}
}
