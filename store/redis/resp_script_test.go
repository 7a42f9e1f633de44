package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
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
	if _, err := s.Add(context.Background(), storetest.Batch(evs)); err != nil {
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
			if _, err := s.Add(context.Background(), storetest.Batch(threeDays(now))); err != nil {
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
			if _, err := s.Add(ctx, storetest.Batch(threeDays(now))); err != nil {
				t.Fatal(err)
			}
		}
		// Many days, so that SCAN needs several pages on a server.
		var many []tokenledger.Event
		for i := range 1500 {
			many = append(many, event(fmt.Sprintf("many-%d", i), now.Add(-time.Duration(i%60)*24*time.Hour), "m", "", "", 1, 1))
		}
		if _, err := mine.Add(ctx, storetest.Batch(many)); err != nil {
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
	if _, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{event("ns-1", now, "m", "u", "s", 1, 1)})); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	evalsBefore := commandCalls(t, c, "eval")
	res, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{event("ns-1", now, "m", "u", "s", 1, 1), event("ns-2", now, "m", "u", "s", 1, 1), event("ns-3", now.Add(-24*time.Hour), "m", "u", "s", 1, 1)}))
	if err != nil {
		t.Fatalf("Add after SCRIPT FLUSH: %v", err)
	}
	if got, want := fmt.Sprint(res.New), "[false true true]"; got != want {
		t.Errorf("New = %s, want %s", got, want)
	}
	// One per day, and one more: today's call is summed, finds ns-1
	// claimed, and goes per event, whose script was flushed too.
	if got := commandCalls(t, c, "eval") - evalsBefore; got != 3 {
		t.Errorf("EVAL calls after NOSCRIPT = %d, want 3", got)
	}
	shaBefore := commandCalls(t, c, "evalsha")
	if _, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{event("ns-4", now, "m", "u", "s", 1, 1)})); err != nil {
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
	res, err := s.Add(ctx, storetest.Batch(evs))
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
		if _, err := s.Add(ctx, storetest.Batch(threeDays(now.Add(-48*time.Hour)))); err != nil {
			t.Fatal(err)
		}
		tc.reset()
		sha := commandCalls(t, c, "evalsha")
		if _, err := s.Add(ctx, storetest.Batch(threeDays(now))); err != nil {
			t.Fatal(err)
		}
		if got := total(tc.count("")); got != 1 {
			t.Errorf("a batch of 12 events over 3 days took %d round trips, want 1", got)
		}
		if got := commandCalls(t, c, "evalsha") - sha; got != 3 {
			t.Errorf("the batch ran %d EVALSHA, want 3 (one per day)", got)
		}
		if _, err := s.Add(ctx, storetest.Batch(days91)); err != nil {
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
				if _, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{event("one-more", now, "m", "u", "", 1, 1)})); err != nil {
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
		if _, err := s.Add(ctx, storetest.Batch(days91)); err != nil { // warms a connection to every master
			t.Fatal(err)
		}
		tc.reset()
		if _, err := s.Add(ctx, storetest.Batch(days91)); err != nil {
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
