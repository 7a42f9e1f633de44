package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ClusterWithReplicas starts a new Redis Cluster of three masters, each
// with one replica, owned by t: Nodes are the masters and Replicas[i]
// replicates Nodes[i]. nodeTimeout is the cluster-node-timeout (how long
// a master may be unreachable before its replica takes over); replicas
// take over however long they were cut off (validity factor 0), so that
// a test may stop one first. extra are passed to every node. It returns
// once every node reports cluster_state:ok with all slots and six known
// nodes and every replica is in sync with its master.
func ClusterWithReplicas(t testing.TB, nodeTimeout time.Duration, extra ...string) *ClusterInstance {
	t.Helper()
	need(t, redisServer, redisCLI)
	args := append([]string{
		"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
		"--cluster-replica-validity-factor", "0",
		// A full sync starts at once instead of waiting 5 s for more
		// replicas to share it.
		"--repl-diskless-sync-delay", "0",
	}, extra...)
	c, err := newReplicatedCluster(t.TempDir(), args)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.kill)
	return c
}

func newReplicatedCluster(dir string, args []string) (*ClusterInstance, error) {
	var all []*Instance
	fail := func(err error) (*ClusterInstance, error) {
		for _, n := range all {
			_ = n.kill()
		}
		return nil, err
	}
	for range 6 {
		n, err := newInstance(dir, true, args)
		if err != nil {
			return fail(err)
		}
		all = append(all, n)
	}
	cmd := []string{"--cluster", "create"}
	for _, n := range all {
		cmd = append(cmd, n.Addr())
	}
	cmd = append(cmd, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, redisCLI, cmd...).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out))
	}
	// redis-cli picks which node replicates which: read it back.
	deadline := time.Now().Add(30 * time.Second)
	var c *ClusterInstance
	for {
		var err error
		if c, err = topology(all); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fail(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range all {
		if err := waitNode(n, deadline, func(info string) bool {
			return strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") && strings.Contains(info, "cluster_known_nodes:6")
		}, "CLUSTER", "INFO"); err != nil {
			return fail(err)
		}
	}
	for _, r := range c.Replicas {
		if err := waitNode(r, deadline, inSync, "INFO", "replication"); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// topology sorts nodes into masters and their replicas from CLUSTER NODES
// (as seen by the first node), or fails while not every replica has its
// master yet.
func topology(nodes []*Instance) (*ClusterInstance, error) {
	out, err := cli(nodes[0].Addr(), "CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	byPort := map[string]*Instance{}
	for _, n := range nodes {
		byPort[strconv.Itoa(n.port)] = n
	}
	ids := map[string]*Instance{}
	masterOf := map[*Instance]string{}
	var masters []*Instance
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		// <id> <ip:port@bus> <flags> <master id or ->
		hostport, _, _ := strings.Cut(f[1], "@")
		n := byPort[hostport[strings.LastIndex(hostport, ":")+1:]]
		if n == nil {
			return nil, fmt.Errorf("CLUSTER NODES names an unknown node: %s", line)
		}
		ids[f[0]] = n
		switch {
		case strings.Contains(f[2], "master"):
			masters = append(masters, n)
		case strings.Contains(f[2], "slave") && f[3] != "-":
			masterOf[n] = f[3]
		}
	}
	if len(masters) != 3 || len(masterOf) != 3 {
		return nil, fmt.Errorf("cluster not formed yet: %d masters and %d replicas with a master\n%s", len(masters), len(masterOf), out)
	}
	c := &ClusterInstance{Nodes: masters, Replicas: make([]*Instance, 3)}
	for r, id := range masterOf {
		for i, m := range masters {
			if ids[id] == m {
				c.Replicas[i] = r
			}
		}
	}
	for i, r := range c.Replicas {
		if r == nil {
			return nil, fmt.Errorf("master %s has no replica yet\n%s", masters[i].Addr(), out)
		}
	}
	return c, nil
}

// inSync reports whether INFO replication says a replica is connected to
// its master and not syncing.
func inSync(info string) bool {
	return strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") && strings.Contains(info, "master_sync_in_progress:0")
}

// waitNode polls a redis-cli command on n until ok accepts its output.
func waitNode(n *Instance, deadline time.Time, ok func(string) bool, args ...string) error {
	for {
		out, err := cli(n.Addr(), args...)
		if err == nil && ok(out) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: %s not as expected: %v\n%s", n.Addr(), strings.Join(args, " "), err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cli runs redis-cli against addr and returns its output.
func cli(addr string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all := append([]string{"-h", "127.0.0.1", "-p", addr[strings.LastIndex(addr, ":")+1:]}, args...)
	out, err := exec.CommandContext(ctx, redisCLI, all...).CombinedOutput()
	return string(out), err
}

// ReplicaOf returns the replica started for master m (nil for a node that
// was not started as a master of c).
func (c *ClusterInstance) ReplicaOf(m *Instance) *Instance {
	for i, n := range c.Nodes {
		if n == m && i < len(c.Replicas) {
			return c.Replicas[i]
		}
	}
	return nil
}

// WaitPromoted waits until n reports role master and cluster_state:ok, as
// a replica does once it has taken over its failed master's slots.
func (c *ClusterInstance) WaitPromoted(t testing.TB, n *Instance, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	if err := waitNode(n, deadline, func(s string) bool { return strings.Contains(s, "role:master") }, "INFO", "replication"); err != nil {
		t.Fatal(err)
	}
	if err := waitNode(n, deadline, func(s string) bool { return strings.Contains(s, "cluster_state:ok") }, "CLUSTER", "INFO"); err != nil {
		t.Fatal(err)
	}
}

// WaitInSync waits until n is a replica connected to its master and done
// syncing, as a restarted failed master is once it has rejoined under the
// replica that took over.
func (c *ClusterInstance) WaitInSync(t testing.TB, n *Instance, within time.Duration) {
	t.Helper()
	if err := waitNode(n, time.Now().Add(within), inSync, "INFO", "replication"); err != nil {
		t.Fatal(err)
	}
}

// Replica starts a new redis-server owned by t that replicates master
// (which must run without a password), and waits until it is in sync. It
// sets the master's repl-diskless-sync-delay to 0 so that the sync starts
// at once.
func Replica(t testing.TB, master *Instance) *Instance {
	t.Helper()
	if _, err := Command(master.Addr(), "CONFIG", "SET", "repl-diskless-sync-delay", "0"); err != nil {
		t.Fatalf("CONFIG SET on the master %s: %v", master.Addr(), err)
	}
	r := Server(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	deadline := time.Now().Add(20 * time.Second)
	if err := waitNode(r, deadline, inSync, "INFO", "replication"); err != nil {
		t.Fatal(err)
	}
	// The replica's side of the link is up before it acknowledges writes:
	// wait until a write on one connection is acknowledged, three times
	// running.
	for ok := 0; ok < 3; {
		out, err := writeAndWait(master.Addr())
		switch {
		case err == nil && out == "1":
			ok++
		case time.Now().After(deadline):
			t.Fatalf("the replica %s does not acknowledge writes to %s: %v %q", r.Addr(), master.Addr(), err, out)
		default:
			ok = 0
			time.Sleep(50 * time.Millisecond)
		}
	}
	return r
}

// writeAndWait sends SET and WAIT 1 200 on one connection to addr and
// returns WAIT's answer.
func writeAndWait(addr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, redisCLI, "-h", "127.0.0.1", "-p", addr[strings.LastIndex(addr, ":")+1:])
	cmd.Stdin = strings.NewReader("SET redistest:replica-probe 1\nWAIT 1 200\n")
	out, err := cmd.Output()
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", err
	}
	return lines[len(lines)-1], err
}
