package redis_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// bucketsOf returns the claim hash names that the ids of evs fall into.
func bucketsOf(p string, day tokenledger.Date, evs []tokenledger.Event) map[string]bool {
	out := map[string]bool{}
	for _, e := range evs {
		out[fmt.Sprintf("%s:{%s}:%s%d", p, day, redis.KindIDs, redis.ClaimBucket(redis.ClaimField(e.ID)))] = true
	}
	return out
}

// pickBatch returns n events of summedBatch's shape whose ids (prefix+i)
// fall into claim hashes that exist (want true) or that do not (false).
func pickBatch(t *testing.T, c goredis.Cmdable, p string, day tokenledger.Date, prefix string, n int, want bool) []tokenledger.Event {
	t.Helper()
	have := map[string]bool{}
	for _, k := range scanKeys(t, c, p+":{"+string(day)+"}:"+redis.KindIDs+"*") {
		have[k] = true
	}
	var out []tokenledger.Event
	taken := map[string]bool{}
	for _, e := range summedBatch(prefix, 200_000) {
		b := bucketsOf(p, day, []tokenledger.Event{e})
		for k := range b {
			if have[k] == want && (want || !taken[k]) {
				taken[k] = true
				out = append(out, e)
			}
		}
		if len(out) == n {
			return out
		}
	}
	t.Fatalf("found only %d of %d ids whose claim hashes exist = %v", len(out), n, want)
	return nil
}

// expiries returns the expiry (unix seconds) of each of the day's claim
// hashes.
func expiries(t *testing.T, c goredis.Cmdable, p string, day tokenledger.Date) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, k := range scanKeys(t, c, p+":{"+string(day)+"}:"+redis.KindIDs+"*") {
		at, err := c.ExpireTime(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = int64(at / time.Second)
	}
	return out
}

// allExpireAt fails t unless every claim hash of the day expires at exp.
func allExpireAt(t *testing.T, c goredis.Cmdable, p string, day tokenledger.Date, exp int64, when string) {
	t.Helper()
	for k, at := range expiries(t, c, p, day) {
		if at != exp {
			t.Errorf("%s: claim hash %s expires at %d, want %d", when, k, at, exp)
		}
	}
}

// TestClaimExpiryMarker: the day's first summed call sets the expiry of
// its own claim hashes and leaves the marker unset; the next carries the
// day's claim hashes, sets every one's expiry and the marker; after that a
// call whose claim hashes all exist sets no claim hash's expiry, and a
// call that creates one sets it.
func TestClaimExpiryMarker(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	day := tokenledger.DateOf(noon())
	exp := s.ExpireAt(day).Unix()
	marker := s.Prefix() + ":{" + string(day) + "}:" + redis.KindClaimExpiry
	add := func(evs []tokenledger.Event) {
		t.Helper()
		res, err := s.Add(ctx, storetest.Batch(evs))
		if err != nil || res.Accepted() != len(evs) {
			t.Fatalf("Add: accepted %d of %d, err %v", res.Accepted(), len(evs), err)
		}
	}

	add(summedBatch("mk-a-", 300))
	if n, _ := c.Exists(ctx, marker).Result(); n != 0 {
		t.Error("the day's first summed call set the marker")
	}
	allExpireAt(t, c, s.Prefix(), day, exp, "after the first call")
	add(summedBatch("mk-b-", 300))
	if v, _ := c.Get(ctx, marker).Result(); v != strconv.FormatInt(exp, 10) {
		t.Errorf("after the second call the marker holds %q, want %d", v, exp)
	}
	if at, _ := c.ExpireTime(ctx, marker).Result(); int64(at/time.Second) != exp {
		t.Errorf("the marker expires at %d, want %d", at/time.Second, exp)
	}
	allExpireAt(t, c, s.Prefix(), day, exp, "after the second call")

	existing := pickBatch(t, c, s.Prefix(), day, "mk-c-", 100, true)
	before := commandCalls(t, c, "expireat")
	add(existing)
	if n := commandCalls(t, c, "expireat") - before; n != 0 {
		t.Errorf("a call of a marked day whose keys all exist ran %d EXPIREATs, want none", n)
	}

	fresh := pickBatch(t, c, s.Prefix(), day, "mk-d-", 70, false)
	add(fresh)
	got := expiries(t, c, s.Prefix(), day)
	for k := range bucketsOf(s.Prefix(), day, fresh) {
		if got[k] != exp {
			t.Errorf("claim hash %s, created by a marked call, expires at %d, want %d", k, got[k], exp)
		}
	}
	allExpireAt(t, c, s.Prefix(), day, exp, "at the end")
}

// TestClaimExpiryAfterRetentionChange: when a store with a longer
// retention writes a day marked with the shorter one, every claim hash of
// the day, those it does not write included, ends up expiring with the
// day's other keys: no claim vanishes while its day is still kept.
func TestClaimExpiryAfterRetentionChange(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	prefix := redistest.Prefix()
	short := open(t, redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix, RetentionDays: 90})
	long := open(t, redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix, RetentionDays: 120})
	day := tokenledger.DateOf(noon())
	for _, p := range []string{"rc-a-", "rc-b-"} {
		if _, err := short.Add(ctx, storetest.Batch(summedBatch(p, 300))); err != nil {
			t.Fatal(err)
		}
	}
	allExpireAt(t, c, prefix, day, short.ExpireAt(day).Unix(), "written with 90 days")

	exp := long.ExpireAt(day).Unix()
	for _, p := range []string{"rc-c-", "rc-d-"} {
		evs := pickBatch(t, c, prefix, day, p, 100, true)
		for i := range evs { // the users' and sessions' keys are left to the marker's call
			evs[i].UserID, evs[i].SessionID = "", ""
		}
		if res, err := long.Add(ctx, storetest.Batch(evs)); err != nil || res.Accepted() != len(evs) {
			t.Fatalf("Add with 120 days: accepted %d of %d, err %v", res.Accepted(), len(evs), err)
		}
	}
	allExpireAt(t, c, prefix, day, exp, "written with 120 days")
	for _, kind := range []string{redis.KindTotals, redis.KindModels, redis.KindUsers, redis.KindUserSet, redis.KindSessions, redis.KindClaimExpiry} {
		k := prefix + ":{" + string(day) + "}:" + kind
		if at, _ := c.ExpireTime(ctx, k).Result(); int64(at/time.Second) != exp {
			t.Errorf("%s expires at %d, want %d", k, at/time.Second, exp)
		}
	}
}

// TestSummedCallManyUsersAndBigCounters: a summed call of 1,000 users and
// 300 models (more fields than one command takes at a time) and counters
// past 2^53 (more than a Lua number holds exactly) writes exactly what
// per-event calls write.
func TestSummedCallManyUsersAndBigCounters(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	summed, ref := open(t, redis.RedisOptions{URL: srv.URL()}), open(t, redis.RedisOptions{URL: srv.URL()})
	day := tokenledger.DateOf(noon())
	big := strconv.FormatInt(1<<53-3, 10)
	for _, s := range []*redis.Store{summed, ref} {
		if err := c.HSet(ctx, s.Prefix()+":{"+string(day)+"}:"+redis.KindUsers, "p|u7", big, "$|u7", big).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, s.Prefix()+":{"+string(day)+"}:"+redis.KindTotals, "t", big).Err(); err != nil {
			t.Fatal(err)
		}
	}
	evs := summedBatch("many-", 1000)
	for i := range evs {
		evs[i].UserID = fmt.Sprint("u", i)
		evs[i].Model = fmt.Sprint("m", i%300)
	}
	evs[7].PromptTokens, evs[7].TotalTokens = 5, 5+evs[7].CompletionTokens
	for round := range 2 { // the second carries the day's claim hashes
		batch := slices.Clone(evs)
		for i := range batch {
			batch[i].ID = fmt.Sprint("many-", round, "-", i)
		}
		res, err := summed.Add(ctx, storetest.Batch(batch))
		if err != nil || res.Accepted() != len(batch) {
			t.Fatalf("round %d: accepted %d of %d, err %v", round, res.Accepted(), len(batch), err)
		}
		if isNew := perEvent(t, ref, batch); slices.Contains(isNew, false) {
			t.Fatal("the reference store found an id claimed")
		}
		got, want := dump(t, c, summed.Prefix()), dump(t, c, ref.Prefix())
		delete(got, ":{"+string(day)+"}:"+redis.KindClaimExpiry)
		if !reflect.DeepEqual(got, want) {
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("round %d: key %s differs from per-event calls", round, k)
				}
			}
		}
	}
	users := c.HMGet(ctx, summed.Prefix()+":{"+string(day)+"}:"+redis.KindUsers, "p|u7").Val()
	if want := strconv.FormatInt(1<<53-3+10, 10); users[0] != want {
		t.Errorf("p|u7 = %v, want %s", users[0], want)
	}
}
