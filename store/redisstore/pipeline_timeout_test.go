package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/redistest"
	"github.com/tokenledger/tokenledger/store/redisstore"
)

// TestHungServerPipelines: a call that is a pipeline of several commands —
// a batch spanning two days, any read of days — fails against a hung
// server within about the read timeout, as a lone command does (go-redis
// alone waits up to twice the read timeout for a pipeline's replies).
func TestHungServerPipelines(t *testing.T) {
	srv := redistest.Server(t)
	s := open(t, redisstore.Options{URL: srv.URL()})
	ctx := context.Background()
	today := noon()
	twoDays := []tokenledger.Event{
		event("p-1", today, "m", "u", "s", 3, 2),
		event("p-2", today.Add(-24*time.Hour), "m", "u", "s", 3, 2),
	}
	if _, err := s.Add(ctx, batch("warm", 1)); err != nil {
		t.Fatal(err)
	}

	srv.Pause(t)
	defer srv.Resume(t)
	for _, c := range []struct {
		what string
		call func() error
	}{
		{"Add of a batch spanning two days", func() error { _, err := s.Add(ctx, twoDays); return err }},
		{"Days over a week", func() error {
			d := tokenledger.DateOf(today)
			_, err := s.Days(ctx, tokenledger.DayQuery{From: d.AddDays(-6), To: d})
			return err
		}},
	} {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		t.Logf("%s against a hung server failed after %s: %v", c.what, took, err)
		if took > redisstore.DefaultTimeout+time.Second {
			t.Errorf("%s against a hung server took %s, want about the %s read timeout", c.what, took, redisstore.DefaultTimeout)
		}
		wantUnavailable(t, c.what, err, srv.Addr())
	}
}
