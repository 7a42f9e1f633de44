package redis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
)

// TestResetMarkerIsTheDatabasesTime: the reset marker holds Redis's TIME,
// not the clock of the instance that reset (here a day off), ResetTimes
// reads it with the server's time now, and every reset gets its own,
// larger marker value, even after a marker ahead of the server's clock:
// the read cache tells resets apart by that value.
func TestResetMarkerIsTheDatabasesTime(t *testing.T) {
	srv := redistest.Shared(t)
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL(), Now: func() time.Time { return time.Now().Add(24 * time.Hour) }})
	key := s.Prefix() + ":mark:reset"
	marker := func() int64 {
		t.Helper()
		v, err := raw(t, srv.Addr()).Get(ctx, key).Result()
		ms, perr := strconv.ParseInt(v, 10, 64)
		if err != nil || perr != nil {
			t.Fatalf("GET %s = %q, %v", key, v, err)
		}
		return ms
	}
	before := time.Now().UnixMilli()
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	first := marker()
	if first < before || first > time.Now().UnixMilli() {
		t.Errorf("the reset marker holds %d, want the server's time in [%d, now]", first, before)
	}
	reset, now, err := s.ResetTimes(ctx)
	if err != nil || reset.UnixMilli() != first || now.Before(reset) || time.Since(now).Abs() > time.Minute {
		t.Errorf("ResetTimes = %v, %v, %v; want the marker %d and the server's time now", reset, now, err, first)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if second := marker(); second <= first {
		t.Errorf("a second reset left the marker at %d, want more than %d", second, first)
	}
	ahead := time.Now().Add(time.Hour).UnixMilli()
	if err := raw(t, srv.Addr()).Set(ctx, key, ahead, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got := marker(); got != ahead+1 {
		t.Errorf("a reset after a marker ahead of the server's clock set %d, want %d", got, ahead+1)
	}
}
