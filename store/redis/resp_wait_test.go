package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// wantFewReplicas fails t unless err is the unavailability of a write too
// few replicas acknowledged.
func wantFewReplicas(t *testing.T, what string, err error, within string) {
	t.Helper()
	if !errors.Is(err, tokenledger.ErrUnavailable) || !strings.Contains(err.Error(), "too few replicas acknowledged the write: 0 of 1 within "+within) {
		t.Errorf("%s: err = %v, want ErrUnavailable saying 0 of 1 replicas acknowledged within %s", what, err, within)
	}
}

// requests returns the events counted on day.
func requests(t *testing.T, s *redis.Store, day tokenledger.Date) int64 {
	t.Helper()
	days, err := s.Days(context.Background(), tokenledger.DayQuery{From: day, To: day})
	if err != nil {
		t.Fatal(err)
	}
	if len(days) == 0 {
		return 0
	}
	return days[0].RequestCount
}

// TestWaitReplicas: with WaitReplicas 1 an Add succeeds while the replica
// keeps up, and fails as unavailable within the wait timeout while it is
// stopped (SIGSTOP), also for concurrent callers whose calls the combiner
// merges; once it is back the same events succeed and count once. Without
// waiting, an Add succeeds with the replica stopped; waiting for more
// replicas than there are always fails.
func TestWaitReplicas(t *testing.T) {
	master := redistest.Server(t)
	replica := redistest.Replica(t, master)
	ctx := context.Background()
	p := redistest.Prefix()
	oneLog, twoLog := &testkit.LogRecorder{}, &testkit.LogRecorder{}
	waiting := open(t, redis.RedisOptions{URL: master.URL(), KeyPrefix: p, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond, Logger: slog.New(oneLog)})
	plain := open(t, redis.RedisOptions{URL: master.URL(), KeyPrefix: p})
	two := open(t, redis.RedisOptions{URL: master.URL(), KeyPrefix: p, WaitReplicas: 2, WaitTimeout: 50 * time.Millisecond, Logger: slog.New(twoLog)})
	// Open says when a master lacks the replicas waited for.
	if n, m := oneLog.Count(redis.FewReplicasMessage), twoLog.Count(redis.FewReplicasMessage); n != 0 || m != 1 {
		t.Errorf("Open logged the missing-replicas warning %d times waiting for 1 of 1 replica and %d times for 2 of 1; want 0 and 1", n, m)
	}
	day := tokenledger.DateOf(noon())

	if res, err := waiting.Add(ctx, storetest.Batch(batch("wr-up", 3))); err != nil || !res.New[0] {
		t.Fatalf("with the replica in sync: %+v, %v", res, err)
	}
	// (1 of 2, or 0 when the replica's acknowledgement is late on a busy
	// machine.)
	if _, err := two.Add(ctx, storetest.Batch(batch("wr-two", 1))); err == nil || !strings.Contains(err.Error(), " of 2 within 50ms") {
		t.Errorf("waiting for 2 replicas of 1: err = %v, want fewer than 2 acknowledged", err)
	}

	replica.Pause(t)
	start := time.Now()
	_, err := waiting.Add(ctx, storetest.Batch(batch("wr-down", 1)))
	if took := time.Since(start); took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("Add with the replica stopped took %s, want the 200ms wait (and less than 2s)", took)
	}
	wantFewReplicas(t, "Add", err, "200ms")
	const callers = 32
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = waiting.Add(ctx, storetest.Batch([]tokenledger.Event{event(fmt.Sprintf("wr-c-%d", i), noon(), "m", "u", "s", 1, 1)}))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		wantFewReplicas(t, fmt.Sprintf("concurrent Add %d", i), err, "200ms")
	}
	if res, err := plain.Add(ctx, storetest.Batch(batch("wr-plain", 1))); err != nil || !res.New[0] {
		t.Errorf("without waiting, with the replica stopped: %+v, %v", res, err)
	}
	// Reads do not wait.
	if got := requests(t, waiting, day); got != 3+1+1+callers+1 {
		t.Errorf("with the replica stopped, %d events counted; want %d (the failed writes ran on the master)", got, 3+1+1+callers+1)
	}
	replica.Resume(t)

	// The events whose Add failed were written on the master: sent again
	// (as the spool would), they are acknowledged and count once.
	res, err := waiting.Add(ctx, storetest.Batch(batch("wr-down", 1)))
	if err != nil || res.New[0] {
		t.Errorf("the failed event again: %+v, %v; want acknowledged, not new", res, err)
	}
	if got := requests(t, waiting, day); got != 3+1+1+callers+1 {
		t.Errorf("after the retry %d events counted, want %d", got, 3+1+1+callers+1)
	}
}

// TestWaitReplicasCluster: on a cluster with a replica per master, with
// the replica of one master stopped, an Add of events in that master's
// slots fails (the WAIT reached the master that took the write, whose
// replica lags) while Adds of events on the other masters succeed, also
// when concurrent callers' calls share one flush.
func TestWaitReplicasCluster(t *testing.T) {
	c := redistest.ClusterWithReplicas(t, 2*time.Second)
	ctx := context.Background()
	s := open(t, redis.RedisOptions{ClusterNodes: c.Addrs(), WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond})
	// Find a day on each master: a day's keys share the hash tag {date}.
	rc := rawCluster(t, c.Addrs())
	dayOn := map[*redistest.Instance]time.Time{}
	for k := 0; len(dayOn) < 3 && k < 60; k++ {
		ts := noon().AddDate(0, 0, -k)
		m, err := rc.MasterForKey(ctx, "{"+string(tokenledger.DateOf(ts))+"}")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes {
			if n.Addr() == m.Options().Addr {
				if _, ok := dayOn[n]; !ok {
					dayOn[n] = ts
				}
			}
		}
	}
	if len(dayOn) < 3 {
		t.Fatalf("the last 60 days fall on %d masters", len(dayOn))
	}
	stopped := c.Nodes[0]
	c.ReplicaOf(stopped).Pause(t)
	defer c.ReplicaOf(stopped).Resume(t)
	for round := range 3 { // WAIT sent to a random master would go right only by chance
		for _, n := range c.Nodes {
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = s.Add(ctx, storetest.Batch([]tokenledger.Event{event(fmt.Sprintf("wc-%d-%d-%d", round, n.Port(), i), dayOn[n], "m", "u", "s", 1, 1)}))
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if n == stopped {
					wantFewReplicas(t, fmt.Sprintf("Add %d on the master whose replica is stopped", i), err, "500ms")
				} else if err != nil {
					t.Errorf("Add %d on a master whose replica runs: %v", i, err)
				}
			}
		}
	}
	// A batch over two masters fails as a whole: one of them lacks its
	// replica.
	mixed := []tokenledger.Event{event("wc-mixed-0", dayOn[c.Nodes[1]], "m", "u", "s", 1, 1), event("wc-mixed-1", dayOn[stopped], "m", "u", "s", 1, 1)}
	if _, err := s.Add(ctx, storetest.Batch(mixed)); err == nil {
		t.Error("a batch with events on the master whose replica is stopped succeeded")
	}
}

// TestWaitOptionsRejected: bad wait options are refused with one sentence.
func TestWaitOptionsRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts redis.RedisOptions
		want string
	}{
		{"negative", redis.RedisOptions{URL: "redis://127.0.0.1:1", WaitReplicas: -1}, "redis wait replicas must not be negative"},
		{"timeout alone", redis.RedisOptions{URL: "redis://127.0.0.1:1", WaitTimeout: time.Second}, "redis wait timeout is set but wait replicas is not"},
		{"timeout at the read timeout", redis.RedisOptions{URL: "redis://127.0.0.1:1", WaitReplicas: 1, WaitTimeout: redis.DefaultTimeout},
			"redis wait timeout must be a whole number of milliseconds from 1ms to less than the read timeout (2s), not 2s"},
		{"timeout below a millisecond", redis.RedisOptions{ClusterNodes: []string{"127.0.0.1:1"}, WaitReplicas: 1, WaitTimeout: time.Microsecond},
			"redis wait timeout must be a whole number of milliseconds from 1ms to less than the read timeout (2s), not 1µs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redis.NewRedis(tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v) succeeded", tc.opts)
			}
			if err.Error() != tc.want {
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
}
