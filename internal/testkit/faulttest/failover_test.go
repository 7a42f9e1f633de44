package faulttest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// failoverWindow is how many days back the failover test's events lie:
// the three days it uses (one per master) are found among them.
const failoverWindow = 30

// TestClusterFailover: a Redis Cluster of three masters with a replica
// each, under 32 clients logging single events through one serve process
// (with its spool), goes through two failovers:
//
//  1. master A is SIGKILLed mid-load and its replica takes over (the
//     replica promotes itself after cluster-node-timeout, 1 s);
//  2. the replica of master B is stopped (SIGSTOP) and B drops its link
//     to it (CLIENT KILL TYPE replica), so that what B acknowledges then
//     exists only on B; B is SIGKILLed and its replica resumed, and takes
//     over without those writes.
//
// Each failed master is restarted and rejoins as a replica. With
// TOKENLEDGER_REDIS_WAIT_REPLICAS=1 every event answered 200 is counted
// exactly once: a write its replica did not acknowledge was answered from
// the spool, which delivered it again. Without it, the events B
// acknowledged while its replica was stopped are lost (the test requires
// that it sees them go), the kill of A loses what was not yet replicated
// (measured, usually none), and nothing else is lost or counted twice.
func TestClusterFailover(t *testing.T) {
	for _, wait := range []bool{true, false} {
		name := "wait"
		if !wait {
			name = "nowait"
		}
		t.Run(name, func(t *testing.T) {
			// In parallel: most of each run is waiting out a failover.
			t.Parallel()
			failover(t, wait)
		})
	}
}

func failover(t *testing.T, wait bool) {
	c := redistest.ClusterWithReplicas(t, time.Second)
	env := map[string]string{
		"REDIS_CLUSTER_NODES":    strings.Join(c.Addrs(), ","),
		"TOKENLEDGER_KEY_PREFIX": "failover",
		"TOKENLEDGER_FILE":       filepath.Join(t.TempDir(), "token_usage.json"),
		"TOKENLEDGER_DB_TIMEOUT": "1s",
	}
	if wait {
		env["TOKENLEDGER_REDIS_WAIT_REPLICAS"] = "1"
		env["TOKENLEDGER_REDIS_WAIT_TIMEOUT"] = "250ms"
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: 2})
	defer rc.Close()
	dates := datePerMaster(t, c, rc)
	a, b := c.Nodes[0], c.Nodes[1]
	s := startServe(t, "tokenledger", env)

	// Single events on the three days, in turn: each master takes a third.
	events := genEvents("fo", 200000, 1, 19)
	for i := range events {
		d := dates[c.Nodes[i%3]]
		events[i].Timestamp = d.Add(events[i].Timestamp.Sub(events[i].Timestamp.Truncate(24 * time.Hour)))
	}
	stop := make(chan struct{})
	o, done := startLoad(t, events, 32, 1, stop, func(int, int) string { return s.url })
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()

	// 1. A dies mid-load.
	waitAcked(t, o, 1000)
	killA := time.Now()
	a.Kill(t)
	c.WaitPromoted(t, c.ReplicaOf(a), 20*time.Second)
	t.Logf("A (%s) SIGKILLed; its replica took over %s later", a.Addr(), time.Since(killA).Round(time.Millisecond))
	waitAcked(t, o, o.ackedCount()+1000)
	a.Restart(t)
	c.WaitInSync(t, a, 20*time.Second)
	waitDrained(t, s.url, 60*time.Second)

	// 2. B's replica falls behind, then B dies.
	waitAcked(t, o, o.ackedCount()+1000)
	// A stopped replica still receives (into its socket buffer) what B
	// sends it, and would read it on SIGCONT: B also drops the link, and
	// sends its later writes to no replica.
	rb := c.ReplicaOf(b)
	rb.Pause(t)
	if _, err := redistest.Command(b.Addr(), "CLIENT", "KILL", "TYPE", "replica"); err != nil {
		t.Fatalf("drop B's link to its replica: %v", err)
	}
	stopped := time.Now()
	onB := ackedOn(o, dates[b])
	for ackedOn(o, dates[b]) < onB+300 && time.Since(stopped) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	onBKill := ackedOn(o, dates[b])
	b.Kill(t)
	window := time.Since(stopped)
	rb.Resume(t)
	c.WaitPromoted(t, rb, 20*time.Second)
	t.Logf("B's replica stopped for %s, %d events of B's day acknowledged meanwhile; B SIGKILLed and its replica promoted %s after it was resumed",
		window.Round(time.Millisecond), onBKill-onB, time.Since(stopped.Add(window)).Round(time.Millisecond))
	waitAcked(t, o, o.ackedCount()+1000)
	close(stop)
	<-done
	b.Restart(t)
	c.WaitInSync(t, b, 20*time.Second)
	waitDrained(t, s.url, 60*time.Second)
	t.Logf("%d events acknowledged (%d batches degraded: answered from the spool), %d not; slowest answer %s",
		len(o.acked), o.degraded, len(o.unacked), o.maxLatency)
	if len(o.unacked) > 0 {
		t.Logf("not acknowledged: e.g. %v", o.failures)
	}
	o.noDuplicates(t)

	// Which acknowledged events are not in the database, per master.
	lost := map[tokenledger.Date][]event{}
	var kept []event
	for i, ok := range claimedOn(t, rc, "failover", o.acked) {
		if ok {
			kept = append(kept, o.acked[i])
		} else {
			lost[o.acked[i].date()] = append(lost[o.acked[i].date()], o.acked[i])
		}
	}
	lostA, lostB, lostC := len(lost[tokenledger.DateOf(dates[a])]), len(lost[tokenledger.DateOf(dates[b])]), len(lost[tokenledger.DateOf(dates[c.Nodes[2]])])
	t.Logf("acknowledged events lost: %d on A (SIGKILL under load), %d on B (SIGKILL with its replica %s behind), %d on C (untouched)",
		lostA, lostB, window.Round(time.Millisecond), lostC)
	if lostC > 0 {
		t.Errorf("%d acknowledged events of the master that did not fail are lost", lostC)
	}
	if wait {
		if !strings.Contains(s.log(), "; each write waits for 1 replica (up to 250ms)") {
			t.Errorf("the start-up line does not say that writes wait for a replica")
		}
		// Every acknowledged event, exactly once.
		checkExactlyOnceOn(t, s.url, rc, "failover", failoverWindow, o)
		return
	}
	// Without WAIT what B acknowledged after its replica stopped is gone:
	// all but the at most 32 writes in flight when it stopped.
	if lostB < onBKill-onB-32 || lostB == 0 {
		t.Errorf("without WAIT, %d events of B's day were lost, want at least %d of the %d acknowledged while its replica was stopped", lostB, max(1, onBKill-onB-32), onBKill-onB)
	}
	// The rest is exact: nothing else lost, nothing counted twice.
	checkExactlyOnceOn(t, s.url, rc, "failover", failoverWindow, &outcome{acked: kept, unacked: o.unacked})
}

// datePerMaster returns, for each master of c, a day of the last
// failoverWindow whose keys (hash tag {date}) it holds: its midnight (UTC).
func datePerMaster(t *testing.T, c *redistest.ClusterInstance, rc *redis.ClusterClient) map[*redistest.Instance]time.Time {
	t.Helper()
	out := map[*redistest.Instance]time.Time{}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for k := 1; k < failoverWindow && len(out) < 3; k++ {
		day := today.AddDate(0, 0, -k)
		m, err := rc.MasterForKey(context.Background(), "{"+string(tokenledger.DateOf(day))+"}")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes {
			if _, ok := out[n]; !ok && n.Addr() == m.Options().Addr {
				out[n] = day
			}
		}
	}
	if len(out) < 3 {
		t.Fatalf("the last %d days fall on %d masters", failoverWindow, len(out))
	}
	return out
}

// ackedOn counts the acknowledged events of the day of ts.
func ackedOn(o *outcome, ts time.Time) int {
	day := tokenledger.DateOf(ts)
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, e := range o.acked {
		if e.date() == day {
			n++
		}
	}
	return n
}
