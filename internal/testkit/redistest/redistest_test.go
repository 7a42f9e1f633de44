package redistest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestServerLifecycle: a server answers, dies on Kill, comes back on the
// same port on Restart, and stops answering while paused.
func TestServerLifecycle(t *testing.T) {
	srv := redistest.Server(t)
	if err := redistest.Ping(srv.Addr()); err != nil {
		t.Fatalf("new server: %v", err)
	}
	if _, err := redistest.Command(srv.Addr(), "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got, _ := redistest.Command(srv.Addr(), "CONFIG", "GET", "save"); got == "" {
		t.Fatal("CONFIG GET answered nothing")
	}
	srv.Kill(t)
	if err := redistest.Ping(srv.Addr()); err == nil {
		t.Fatal("a killed server still answers")
	}
	port := srv.Port()
	srv.Restart(t)
	if srv.Port() != port || redistest.Ping(srv.Addr()) != nil {
		t.Fatal("the restarted server does not answer on the same port")
	}
	if got, err := redistest.Command(srv.Addr(), "EXISTS", "k"); err != nil || got != ":0" {
		t.Errorf("after a restart EXISTS k = %q, %v; want :0 (nothing is saved)", got, err)
	}
	srv.Pause(t)
	start := time.Now()
	if err := redistest.Ping(srv.Addr()); err == nil {
		t.Error("a paused server answered")
	}
	if time.Since(start) > 3*time.Second {
		t.Error("Ping against a paused server did not give up within its second")
	}
	srv.Resume(t)
	if err := redistest.Ping(srv.Addr()); err != nil {
		t.Errorf("after Resume: %v", err)
	}
}

// TestSharedIsShared: Shared returns the same server every time.
func TestSharedIsShared(t *testing.T) {
	a, b := redistest.Shared(t), redistest.Shared(t)
	if a != b {
		t.Error("Shared returned two servers")
	}
	if p, q := redistest.Prefix(), redistest.Prefix(); p == q || strings.ContainsAny(p, "{}*?[]\\ ") {
		t.Errorf("prefixes %q and %q", p, q)
	}
}

// TestCluster: the three masters agree the cluster is ok and split the
// slots between them.
func TestCluster(t *testing.T) {
	c := redistest.SharedCluster(t)
	if len(c.Addrs()) != 3 {
		t.Fatalf("%d nodes", len(c.Addrs()))
	}
	for _, a := range c.Addrs() {
		got, err := redistest.Command(a, "CLUSTER", "KEYSLOT", "x")
		if err != nil || got != ":16287" {
			t.Errorf("%s: CLUSTER KEYSLOT x = %q, %v", a, got, err)
		}
	}
	// A key lives on exactly one master: the others redirect.
	moved := 0
	for _, a := range c.Addrs() {
		if _, err := redistest.Command(a, "GET", "x"); err != nil && strings.HasPrefix(err.Error(), "MOVED") {
			moved++
		}
	}
	if moved != 2 {
		t.Errorf("%d masters redirected GET x, want 2", moved)
	}
}

// TestMissingBinary: without redis-server on PATH the helpers skip, and
// with TOKENLEDGER_REQUIRE_REDIS=1 they fail. It runs this test binary
// again with an empty PATH.
func TestMissingBinary(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		redistest.Server(t)
		t.Log("started a server without redis-server on PATH")
		return
	}
	run := func(require string) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinary$", "-test.v")
		cmd.Env = []string{"PATH=", "REDISTEST_CHILD=1", redistest.RequireEnv + "=" + require}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := run(""); !strings.Contains(out, "--- SKIP: TestMissingBinary") || !strings.Contains(out, "redis-server is not installed") {
		t.Errorf("without the binary and without %s the test did not skip:\n%s", redistest.RequireEnv, out)
	}
	if out := run("1"); !strings.Contains(out, "--- FAIL: TestMissingBinary") || !strings.Contains(out, "forbids skipping") {
		t.Errorf("without the binary and with %s=1 the test did not fail:\n%s", redistest.RequireEnv, out)
	}
}

// TestClusterWithReplicas: each master's replica has its writes; when the
// master is SIGKILLed the replica takes over its slots, and the restarted
// master rejoins as the replica of the one that replaced it.
func TestClusterWithReplicas(t *testing.T) {
	c := redistest.ClusterWithReplicas(t, time.Second)
	if len(c.Nodes) != 3 || len(c.Replicas) != 3 || len(c.Addrs()) != 6 {
		t.Fatalf("%d masters, %d replicas", len(c.Nodes), len(c.Replicas))
	}
	// The master that owns x takes the write; its replica has it.
	var m *redistest.Instance
	for _, n := range c.Nodes {
		if _, err := redistest.Command(n.Addr(), "SET", "x", "1"); err == nil {
			m = n
		}
	}
	if m == nil {
		t.Fatal("no master took SET x")
	}
	r := c.ReplicaOf(m)
	// WAIT counts the replicas that have its own connection's writes, so
	// the SET is sent again on WAIT's connection.
	if got, err := redistest.Commands(m.Addr(), []string{"SET", "x", "1"}, []string{"WAIT", "1", "1000"}); err != nil || got[1] != ":1" {
		t.Fatalf("SET x then WAIT 1 on the master of x = %q, %v; want :1", got, err)
	}
	if _, err := redistest.Command(r.Addr(), "READONLY"); err != nil {
		t.Fatal(err)
	}
	m.Kill(t)
	start := time.Now()
	c.WaitPromoted(t, r, 20*time.Second)
	t.Logf("replica promoted %s after its master's SIGKILL", time.Since(start).Round(time.Millisecond))
	if got, err := redistest.Command(r.Addr(), "GET", "x"); err != nil || got != "$1" {
		t.Errorf("GET x on the promoted replica = %q, %v; want the value", got, err)
	}
	m.Restart(t)
	c.WaitInSync(t, m, 20*time.Second)
}
