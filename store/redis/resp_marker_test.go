package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
)

// TestMarkerSurvivesResetAndExpires: a migration marker is remembered,
// lies outside the usage keys Reset deletes, and expires after R + 1 days.
func TestMarkerSurvivesResetAndExpires(t *testing.T) {
	srv := redistest.Shared(t)
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL(), RetentionDays: 30})
	if ok, err := s.HasMark(ctx, "migrated:abc"); err != nil || ok {
		t.Fatalf("HasMark before SetMark = %v, %v; want false", ok, err)
	}
	if err := s.SetMark(ctx, "migrated:abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasMark(ctx, "migrated:abc"); err != nil || !ok {
		t.Fatalf("HasMark after SetMark and Reset = %v, %v; want true", ok, err)
	}
	ttl, err := raw(t, srv.Addr()).TTL(ctx, s.Prefix()+":mark:migrated:abc").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := 31 * 24 * time.Hour; ttl > want || ttl < want-time.Minute {
		t.Errorf("marker TTL = %v, want about %v", ttl, want)
	}
}
