package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestFirstEventsMarkDaysWithoutV6Keys: the call that counts a day's
// first event, per event or summed, sets the totals' nov6; a day that had
// counted events before (as an older version left it) never gets it, and
// keeps honouring v6 claim keys, while a nov6 day no longer looks for
// them (no v6 instance runs beside v7 or later: docs/redis.md, "Upgrading
// to v7"). Every event is counted either way.
func TestFirstEventsMarkDaysWithoutV6Keys(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	k, _ := redis.NewKeys(s.Prefix())
	now := noon()
	add := func(evs ...tokenledger.Event) []bool {
		t.Helper()
		res, err := s.Add(ctx, storetest.Batch(evs))
		if err != nil {
			t.Fatal(err)
		}
		return res.New
	}
	totals := func(at int) map[string]string {
		return c.HGetAll(ctx, k.Day(tokenledger.DateOf(now.AddDate(0, 0, -at)), redis.KindTotals)).Val()
	}
	// Day 1 starts with one event (the per-event script), day 2 with a
	// batch (summed); day 3 had counted an event before the upgrade.
	day3 := tokenledger.DateOf(now.AddDate(0, 0, -3))
	if err := c.HSet(ctx, k.Day(day3, redis.KindTotals), "n", "1").Err(); err != nil {
		t.Fatal(err)
	}
	at := func(d int) tokenledger.Event {
		return event(tokenledger.NewEventID(), now.AddDate(0, 0, -d), "m", "u", "s", 1, 1)
	}
	add(at(1))
	add(at(2), at(2), at(2))
	add(at(3), at(3), at(3))
	add(at(3))
	for d, want := range map[int]string{1: "1 1", 2: "3 1", 3: "5 "} {
		if got := totals(d)["n"] + " " + totals(d)["nov6"]; got != want {
			t.Errorf("day %d: n and nov6 = %q, want %q", d, got, want)
		}
	}
	// A claim key under v6's name: on day 3 it is the id's claim, on day 1
	// nothing looks for it, by either script.
	for _, d := range []int{1, 3} {
		single, batch := at(d), at(d)
		date := tokenledger.DateOf(single.Timestamp)
		for _, e := range []tokenledger.Event{single, batch} {
			if err := c.Set(ctx, k.ID(date, e.ID), "1", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		want := fmt.Sprint(d == 1)
		if got := fmt.Sprint(add(single)); got != "["+want+"]" {
			t.Errorf("day %d: a single event with a v6 claim key: new = %s, want %s", d, got, want)
		}
		if got := fmt.Sprint(add(batch, at(d))); got != "["+want+" true]" {
			t.Errorf("day %d: a batch with a v6 claim key: new = %s, want [%s true]", d, got, want)
		}
	}
}

// TestSummedScriptWantsV6Keys: a summed call without its v6 claim keys
// on a day that may hold some is answered 3 and changes nothing; with
// them it counts; a flag other than 0 or 1 is refused.
func TestSummedScriptWantsV6Keys(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	day := tokenledger.DateOf(noon())
	p := s.Prefix() + ":{" + string(day) + "}:"
	if err := c.HSet(ctx, p+redis.KindTotals, "n", "1").Err(); err != nil {
		t.Fatal(err)
	}
	ids := []string{"v6w-1", "v6w-2"}
	call := func(flag string) (int64, error) {
		keys := []string{p + redis.KindTotals, p + redis.KindModels, p + redis.KindUsers, p + redis.KindUserSet, p + redis.KindSessions, p + redis.KindClaimExpiry, p + redis.KindClaimDense}
		if flag == "1" {
			for _, id := range ids {
				keys = append(keys, p+redis.KindID+id)
			}
		}
		for _, id := range ids {
			keys = append(keys, fmt.Sprintf("%s%s%d", p, redis.KindIDs, redis.ClaimBucket(redis.ClaimField(id))))
		}
		args := []any{strconv.FormatInt(s.ExpireAt(day).Unix(), 10), "1", "0", "0", "0", flag}
		for _, id := range ids {
			args = append(args, redis.ClaimField(id))
		}
		args = append(args, "6", "4", "2", "0", "0", "0", "0", "2", "0", "0", "0", "m", "6", "4", "2", "2", "0", "0", "0", "0")
		return c.EvalSha(ctx, redis.SumScriptSHA(), keys, args...).Int64()
	}
	for _, flag := range []string{"2", "", "01"} {
		if _, err := call(flag); err == nil || !strings.Contains(err.Error(), "expected 1 or 0 for whether the v6 claim keys are in KEYS") {
			t.Errorf("flag %q: err = %v, want the refusal", flag, err)
		}
	}
	if v, err := call("0"); err != nil || v != 3 {
		t.Fatalf("without the v6 keys: %d, %v; want 3", v, err)
	}
	if left := scanKeys(t, c, p+"*"); len(left) != 1 {
		t.Fatalf("refused calls wrote: %v", left)
	}
	if n := c.HGetAll(ctx, p+redis.KindTotals).Val(); fmt.Sprint(n) != "map[n:1]" {
		t.Fatalf("totals after refused calls: %v", n)
	}
	if v, err := call("1"); err != nil || (v != 1 && v != 2) {
		t.Fatalf("with the v6 keys: %d, %v; want 1 or 2", v, err)
	}
	if n := c.HGetAll(ctx, p+redis.KindTotals).Val(); n["n"] != "3" || n["nov6"] != "" {
		t.Errorf("totals = %v, want n 3 and no nov6", n)
	}
}

// TestConcurrentCallsOfADayWithV6Keys: many callers at once on a day that
// may hold v6 claim keys each get the answer 3 (merged or not) and send
// again with the keys: every add succeeds and every event counts once.
func TestConcurrentCallsOfADayWithV6Keys(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	k, _ := redis.NewKeys(s.Prefix())
	now := noon()
	totals := k.Day(tokenledger.DateOf(now), redis.KindTotals)
	if err := c.HSet(ctx, totals, "n", "1").Err(); err != nil {
		t.Fatal(err)
	}
	const callers = 64
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{
				event(tokenledger.NewEventID(), now, "m", "u", "s", 1, 1),
				event(tokenledger.NewEventID(), now, "m", "u", "s", 1, 1),
			}))
			errs <- err
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := c.HGet(ctx, totals, "n").Val(); n != strconv.Itoa(1+2*callers) {
		t.Errorf("the day counts %s events, want %d", n, 1+2*callers)
	}
}
