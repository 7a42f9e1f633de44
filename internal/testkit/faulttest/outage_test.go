package faulttest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// aofArgs make redis-server fsync every write before answering it, so that
// what it acknowledged survives its SIGKILL.
var aofArgs = []string{"--appendonly", "yes", "--appendfsync", "always"}

// TestRedisKilledMidStream: 32 clients send 20,000 events in batches of 1
// to 10 to one serve process; Redis is SIGKILLed in the middle and comes
// back on the same port 2 s later. Once the spool has drained, the database
// holds every event answered 200 exactly once (see checkExactlyOnce).
func TestRedisKilledMidStream(t *testing.T) {
	srv := redistest.Server(t, aofArgs...)
	s := startServe(t, "tokenledger", redisEnv(srv, "killed", t.TempDir()))
	events := genEvents("rk", 20000, 3, 4)

	o, done := startLoad(t, events, 32, 10, nil, func(int, int) string { return s.url })
	waitAcked(t, o, len(events)/3)
	srv.Kill(t)
	killedAt := o.ackedCount()
	time.Sleep(2 * time.Second) // the outage itself, not a synchronisation
	srv.Restart(t)
	<-done
	t.Logf("Redis was SIGKILLed after %d events were acknowledged; %d batches were answered degraded; slowest answer %s",
		killedAt, o.degraded, o.maxLatency)
	if o.degraded == 0 {
		t.Errorf("no batch was answered degraded: the outage did not happen while the clients were sending")
	}
	if len(o.unacked) > 0 {
		t.Logf("not acknowledged: %d events, e.g. %v", len(o.unacked), o.failures)
	}
	o.noDuplicates(t)
	waitDrained(t, s.url, 60*time.Second)
	checkExactlyOnce(t, s.url, srv, "killed", 7, o)
}

// TestServeKilledWhileSpooling: with Redis stopped, clients post events,
// which are spooled (200, degraded: true); tokenledger is SIGKILLed while
// they post; Redis comes back and tokenledger restarts on the same file and
// spool. Every acknowledged event is delivered exactly once.
func TestServeKilledWhileSpooling(t *testing.T) {
	srv := redistest.Server(t, aofArgs...)
	env := redisEnv(srv, "spooling", t.TempDir())
	env["TOKENLEDGER_DB_TIMEOUT"] = "500ms"
	s := startServe(t, "tokenledger", env)

	events := genEvents("sk", 6000, 3, 5)
	up, down := events[:1000], events[1000:]
	// Some events reach the database before the outage.
	for _, b := range batches(up, 10, 6) {
		if a := mustPost(t, s.url, b); a.Degraded {
			t.Fatalf("with Redis up: %+v", a)
		}
	}
	srv.Kill(t)

	o, done := startLoad(t, down, 16, 10, nil, func(int, int) string { return s.url })
	waitAcked(t, o, len(down)/2)
	s.kill(t)
	<-done
	o.acked = append(o.acked, up...)
	if o.degraded == 0 {
		t.Fatal("no batch was answered degraded while Redis was down")
	}
	t.Logf("SIGKILLed tokenledger with %d events acknowledged (%d degraded batches), %d not acknowledged", len(o.acked), o.degraded, len(o.unacked))

	srv.Restart(t)
	s2 := startServe(t, "tokenledger (restarted)", env)
	o.noDuplicates(t)
	waitDrained(t, s2.url, 60*time.Second)
	if !strings.Contains(s2.log(), "events from an earlier run wait in the spool") {
		t.Errorf("the restarted process did not log the spooled events it found")
	}
	checkExactlyOnce(t, s2.url, srv, "spooling", 7, o)
}

// TestRedisHung: Redis hangs (SIGSTOP) for 10 s while clients post. Every
// request is answered within a generous bound of the 500 ms database
// timeout (spooled, degraded: true), reads answer 503 while events wait, and
// after SIGCONT everything lands exactly once.
func TestRedisHung(t *testing.T) {
	srv := redistest.Server(t)
	env := redisEnv(srv, "hung", t.TempDir())
	env["TOKENLEDGER_DB_TIMEOUT"] = "500ms"
	s := startServe(t, "tokenledger", env)
	const bound = 10 * time.Second // liveness, not speed: 20 × the timeout

	// The clients send until told to stop, pacing themselves (the pool of
	// events is larger than they get through), so that the stream runs
	// before, through and after the hang.
	events := genEvents("hg", 60000, 3, 7)
	stop := make(chan struct{})
	o, done := startLoad(t, events, 16, 5, stop, func(int, int) string {
		time.Sleep(20 * time.Millisecond)
		return s.url
	})
	waitAcked(t, o, 1000)
	srv.Pause(t)
	hangEnds := time.Now().Add(10 * time.Second)
	pausedAt := o.ackedCount()
	// While Redis hangs, events keep being acknowledged (spooled) ...
	waitAcked(t, o, pausedAt+1000)
	// ... and a read is refused, rather than leaving the spooled events out.
	start := time.Now()
	status, body := get(t, s.url+"/api/tokens?action=stats")
	if took := time.Since(start); status != 503 || took > bound {
		t.Errorf("a read while Redis hangs answered %d after %s: %s (want 503 within %s)", status, took, body, bound)
	}
	time.Sleep(time.Until(hangEnds)) // the hang itself, not a synchronisation
	resumedAt := o.ackedCount()
	// Ten seconds of delivery attempts against the hung Redis: none may
	// say it is reachable again.
	hungLog := s.log()
	srv.Resume(t)
	waitAcked(t, o, resumedAt+1000)
	close(stop)
	<-done

	t.Logf("hang from %d to %d acknowledged events; %d of all batches degraded; slowest answer %s", pausedAt, resumedAt, o.degraded, o.maxLatency)
	if o.degraded == 0 {
		t.Error("no batch was answered degraded during the hang")
	}
	if o.maxLatency > bound {
		t.Errorf("the slowest POST took %s (timeout 500ms, bound %s)", o.maxLatency, bound)
	}
	if len(o.unacked) > 0 {
		t.Errorf("%d events were not acknowledged during the hang, e.g. %v", len(o.unacked), o.failures)
	}
	if !strings.Contains(string(body), " events wait in the local spool") || !strings.Contains(s.log(), "events wait in the local spool") {
		t.Errorf("the refused read does not say how many events wait in the spool: %s", body)
	}
	o.noDuplicates(t)
	waitDrained(t, s.url, 60*time.Second)
	checkExactlyOnce(t, s.url, srv, "hung", 7, o)
	const down, back = "⚠️ Database unavailable", "✅ Database reachable again"
	if !strings.Contains(hungLog, down) || strings.Contains(hungLog, back) {
		t.Errorf("while Redis was stopped the log did not say it is unavailable, or said it is reachable again:\n%s", linesWith(hungLog, down, back))
	}
	if all := s.log(); !strings.Contains(all[strings.Index(all, down)+1:], back) {
		t.Errorf("after SIGCONT the log does not say the database is reachable again after it said it is unavailable:\n%s", linesWith(all, down, back))
	}
}

// linesWith returns the lines of log that contain one of words.
func linesWith(log string, words ...string) string {
	var out []string
	for line := range strings.Lines(log) {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(line, w) }) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
