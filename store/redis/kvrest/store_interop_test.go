package kvrest_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// interopEvents are events over three days, several models, users and
// sessions, with cost and cache and reasoning tokens, and one id sent
// twice.
func interopEvents(now time.Time, tag string) []tokenledger.Event {
	var evs []tokenledger.Event
	for i := range 60 {
		ts := now.Add(-time.Duration(i%3) * 24 * time.Hour)
		e := event(fmt.Sprintf("%s-%d", strings.ReplaceAll(tag, "→", "-to-"), i), ts, fmt.Sprintf("model-%d", i%4), fmt.Sprintf("user-%d", i%5), fmt.Sprintf("s-%d", i%9), int64(100+i), int64(i))
		e.CacheReadTokens = int64(i % 7)
		e.ReasoningTokens = min(int64(i%3), e.CompletionTokens)
		e.Cost = tokenledger.Nanos(1_234_567 * (i + 1))
		if i%10 == 0 {
			e.UserID = "" // some events without a user or session
			e.SessionID = ""
		}
		evs = append(evs, e)
	}
	return append(evs, evs[7]) // a re-sent id
}

// TestInterop writes through one protocol and reads through the other, on
// the same redis-server and prefix, both ways: the days are identical,
// per-user totals included, and an id counted through one protocol is a
// duplicate through the other.
func TestInterop(t *testing.T) {
	srv := redistest.Shared(t)
	f := kvresttest.Start(t, srv.Addr(), kvresttest.Options{})
	now := noon()
	day := tokenledger.DateOf(now)
	q := tokenledger.DayQuery{From: day.AddDays(-2), To: day, Users: true}
	ctx := context.Background()

	for _, dir := range []string{"redis→rest", "rest→redis"} {
		t.Run(dir, func(t *testing.T) {
			prefix := redistest.Prefix()
			rs, err := redis.OpenRedis(ctx, redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			ks := open(t, f, redis.KVRestOptions{Prefix: prefix})
			var writer, other tokenledger.Store = rs, ks
			if dir == "rest→redis" {
				writer, other = ks, rs
			}
			evs := interopEvents(now, dir)
			res, err := writer.Add(ctx, storetest.Batch(evs))
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted() != 60 || res.Duplicates() != 1 {
				t.Errorf("writer accepted %d and saw %d duplicates, want 60 and 1", res.Accepted(), res.Duplicates())
			}
			want, err := writer.Days(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := other.Days(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != 3 {
				t.Fatalf("writer read %d days, want 3", len(want))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("days read through the other protocol differ:\n got %+v\nwant %+v", got, want)
			}
			if len(got[2].Users) != 5 || got[2].Users["user-1"].RequestCount == 0 {
				t.Errorf("per-user totals missing: %+v", got[2].Users)
			}
			// The ids are shared: sending the events through the other
			// protocol counts nothing.
			res, err = other.Add(ctx, storetest.Batch(evs))
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted() != 0 {
				t.Errorf("the other protocol counted %d events again", res.Accepted())
			}
			again, err := writer.Days(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, want) {
				t.Errorf("days changed after re-sending through the other protocol:\n got %+v\nwant %+v", again, want)
			}
			// A reset through the other protocol empties it for both, and
			// both read the time it was done (the fallback spool drops
			// what it spooled before it).
			before := time.Now().Truncate(time.Millisecond)
			if err := other.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			if d, err := writer.Days(ctx, q); err != nil || len(d) != 0 {
				t.Errorf("after a reset through the other protocol the writer reads %d days, %v", len(d), err)
			}
			for _, st := range []tokenledger.Store{rs, ks} {
				at, err := st.(interface {
					LastReset(context.Context) (time.Time, error)
				}).LastReset(ctx)
				if err != nil || at.Before(before) || at.After(after) {
					t.Errorf("%T reads the last reset at %v, %v; want between %v and %v", st, at, err, before, after)
				}
			}
		})
	}
}
