package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestHungServerPipelines: a call that is a pipeline of several commands —
// a batch spanning two days, any read of days — fails against a hung
// server within about the read timeout, as a lone command does (go-redis
// alone waits up to twice the read timeout for a pipeline's replies).
func TestHungServerPipelines(t *testing.T) {
	srv := redistest.Server(t)
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	ctx := context.Background()
	today := noon()
	twoDays := []tokenledger.Event{
		event("p-1", today, "m", "u", "s", 3, 2),
		event("p-2", today.Add(-24*time.Hour), "m", "u", "s", 3, 2),
	}
	if _, err := s.Add(ctx, storetest.Batch(batch("warm", 1))); err != nil {
		t.Fatal(err)
	}

	srv.Pause(t)
	defer srv.Resume(t)
	for _, c := range []struct {
		what string
		call func() error
	}{
		{"Add of a batch spanning two days", func() error { _, err := s.Add(ctx, storetest.Batch(twoDays)); return err }},
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
		if took > redis.DefaultTimeout+2*time.Second { // slack for a loaded machine; the bug was 2× and 4×
			t.Errorf("%s against a hung server took %s, want about the %s read timeout", c.what, took, redis.DefaultTimeout)
		}
		wantUnavailable(t, c.what, err, srv.Addr())
	}
}

// TestHungClusterMaster: on a cluster, a lone add to the master that owns
// the day's slot fails within about the read timeout when that master
// hangs — go-redis's cluster client retries a timed-out command up to its
// MaxRedirects (3), which without a bound of the store's own made it four
// read timeouts. A batch spanning two days (a pipeline) likewise.
func TestHungClusterMaster(t *testing.T) {
	cl := redistest.Cluster(t)
	s := open(t, redis.RedisOptions{ClusterNodes: cl.Addrs()})
	ctx := context.Background()
	today := noon()
	if _, err := s.Add(ctx, storetest.Batch(batch("warm", 1))); err != nil {
		t.Fatal(err)
	}
	master, err := rawCluster(t, cl.Addrs()).MasterForKey(ctx, s.Prefix()+":{"+string(tokenledger.DateOf(today))+"}:totals")
	if err != nil {
		t.Fatal(err)
	}
	var hung *redistest.Instance
	for _, n := range cl.Nodes {
		if n.Addr() == master.Options().Addr {
			hung = n
		}
	}
	if hung == nil {
		t.Fatalf("no node of %v is %s", cl.Addrs(), master.Options().Addr)
	}
	hung.Pause(t)
	defer hung.Resume(t)
	for _, c := range []struct {
		what string
		evs  []tokenledger.Event
	}{
		{"Add of one event", []tokenledger.Event{event("h-1", today, "m", "u", "s", 3, 2)}},
		{"Add of a batch spanning two days", []tokenledger.Event{
			event("h-2", today, "m", "u", "s", 3, 2), event("h-3", today.Add(-24*time.Hour), "m", "u", "s", 3, 2)}},
	} {
		start := time.Now()
		_, err := s.Add(ctx, storetest.Batch(c.evs))
		took := time.Since(start)
		t.Logf("%s to a hung master failed after %s: %v", c.what, took, err)
		if took > redis.DefaultTimeout+2*time.Second { // slack for a loaded machine; the bug was 2× and 4×
			t.Errorf("%s to a hung master took %s, want about the %s read timeout", c.what, took, redis.DefaultTimeout)
		}
		if err == nil {
			t.Errorf("%s to a hung master succeeded", c.what)
		}
	}
}
