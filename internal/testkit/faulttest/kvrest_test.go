package faulttest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// TestKVRestFlaky: serve on the Upstash-compatible REST front, with one
// request in five to the front failing — 503 before the command runs, 502
// after it ran, a reply slower than the database timeout, a connection
// dropped before or after the command ran. 32 clients send 5,000 events;
// none is answered as a duplicate (the calls sent again after a lost reply
// carry their claim token); once the spool has drained (with the faults
// still on), every acknowledged event is counted exactly once, and a
// Redis-protocol instance on the same database reads the same numbers.
func TestKVRestFlaky(t *testing.T) {
	srv := redistest.Server(t)
	front := kvresttest.Start(t, srv.Addr(), kvresttest.Options{})
	front.SetRandomFaults(kvresttest.RandomFaults{
		FailBefore: 0.04, FailAfter: 0.04, Delay: 0.04, DropBefore: 0.04, DropAfter: 0.04,
		DelayFor: 1500 * time.Millisecond, Seed: 8,
	})
	dir := t.TempDir()
	env := map[string]string{
		"KV_REST_API_URL":        front.URL(),
		"KV_REST_API_TOKEN":      front.Token(),
		"TOKENLEDGER_KEY_PREFIX": "flaky",
		"TOKENLEDGER_FILE":       filepath.Join(dir, "token_usage.json"),
		"TOKENLEDGER_DB_TIMEOUT": "1s",
	}
	s := startServe(t, "tokenledger (kv)", env)

	events := genEvents("kv", 5000, 3, 9)
	o := load(t, events, 32, 10, func(int, int) string { return s.url })
	t.Logf("%d batches answered degraded; %d events not acknowledged, e.g. %v; slowest answer %s",
		o.degraded, len(o.unacked), o.failures, o.maxLatency)
	o.noDuplicates(t)
	waitDrained(t, s.url, 60*time.Second)

	st := front.Stats()
	t.Logf("the REST front saw %d requests; faults %v", st.Requests, st.Faults)
	for _, k := range []kvresttest.FaultKind{kvresttest.FailBefore, kvresttest.FailAfter, kvresttest.Delay, kvresttest.DropBefore, kvresttest.DropAfter} {
		if st.Faults[k] == 0 {
			t.Errorf("no %s fault happened: the test did not test it", k)
		}
	}

	front.ClearFaults()
	checkExactlyOnce(t, s.url, srv, "flaky", 7, o)

	// The same database through the Redis protocol reads the same.
	r := startServe(t, "tokenledger (redis)", redisEnv(srv, "flaky", t.TempDir()))
	if got, want := read(t, r.url, 7), read(t, s.url, 7); got.Raw != want.Raw {
		t.Errorf("the Redis-protocol instance reads differently:\n%v\n%v", got.Raw, want.Raw)
	}
}
