// Package redistest starts real redis-server processes for tests: a single
// server on a free loopback port, or a real three-master Redis Cluster
// (with a replica per master: ClusterWithReplicas).
//
// When redis-server (or, for a cluster, redis-cli) is not installed, the
// helpers skip the test, unless the environment variable
// TOKENLEDGER_REQUIRE_REDIS is "1", in which case they fail it: CI sets it so
// that a missing binary can never pass as a green run.
//
// Servers started with Server and Cluster belong to one test and stop at its
// cleanup. Shared and SharedCluster return one instance per test binary,
// which tests isolate from each other with unique key prefixes (Prefix); a
// package that uses them calls Main from its TestMain so the processes stop
// when the tests end.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing binary from a
// skip into a failure when set to "1".
const RequireEnv = "TOKENLEDGER_REQUIRE_REDIS"

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 10 * time.Second

// Instance is one running (or deliberately stopped) redis-server process.
// Its methods are safe for concurrent use.
type Instance struct {
	port    int
	busPort int // cluster bus port; 0 when not a cluster node
	dir     string
	args    []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// Addr returns the server's "127.0.0.1:port".
func (i *Instance) Addr() string { return "127.0.0.1:" + strconv.Itoa(i.port) }

// URL returns the server's redis:// URL.
func (i *Instance) URL() string { return "redis://" + i.Addr() }

// Port returns the server's TCP port.
func (i *Instance) Port() int { return i.port }

// Dir returns the server's working directory.
func (i *Instance) Dir() string { return i.dir }

// Kill stops the server at once with SIGKILL and waits until it is gone.
func (i *Instance) Kill(t testing.TB) {
	t.Helper()
	if err := i.kill(); err != nil {
		t.Fatal(err)
	}
}

// Restart starts the server again on the same port (after Kill) and waits
// until it accepts connections. Data is not kept: the server saves nothing.
func (i *Instance) Restart(t testing.TB) {
	t.Helper()
	if err := i.start(); err != nil {
		t.Fatal(err)
	}
}

// Pause freezes the server with SIGSTOP: it keeps its port and connections
// but answers nothing, as a hung server does.
func (i *Instance) Pause(t testing.TB) {
	t.Helper()
	if err := i.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume lets a paused server run again with SIGCONT.
func (i *Instance) Resume(t testing.TB) {
	t.Helper()
	if err := i.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// Log returns what the server wrote to its log file so far, for failure
// messages.
func (i *Instance) Log() string {
	b, err := os.ReadFile(i.dir + "/redis.log")
	if err != nil {
		return ""
	}
	return string(b)
}

func (i *Instance) signal(sig syscall.Signal) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd == nil {
		return fmt.Errorf("redis-server on port %d is not running", i.port)
	}
	if err := i.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to redis-server on port %d: %w", sig, i.port, err)
	}
	return nil
}

// kill sends SIGKILL (after SIGCONT, so a paused server dies too) and waits.
func (i *Instance) kill() error {
	i.mu.Lock()
	cmd, exited := i.cmd, i.exited
	i.cmd = nil
	i.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("redis-server on port %d did not exit after SIGKILL", i.port)
	}
}

// start launches redis-server with the instance's arguments and waits until
// it answers PING.
func (i *Instance) start() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd != nil {
		return fmt.Errorf("redis-server on port %d is already running", i.port)
	}
	args := append([]string{
		"--port", strconv.Itoa(i.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", i.dir,
		"--logfile", i.dir + "/redis.log",
		"--daemonize", "no",
	}, i.args...)
	cmd := exec.Command(redisServer, args...)
	cmd.Dir = i.dir
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server on port %d: %w", i.port, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := waitReady(i.Addr(), exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on port %d: %w\n%s", i.port, err, i.Log())
	}
	i.cmd, i.exited = cmd, exited
	return nil
}

// waitReady polls addr with PING until it answers PONG, the process exits
// or startTimeout passes.
func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if err := Ping(addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", startTimeout, err)
		}
		select {
		case <-exited:
			return errors.New("exited during start-up")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Ping sends one PING to addr over a fresh connection and returns nil when
// the server answers it within a second, with PONG or, when it requires a
// password, with NOAUTH.
func Ping(addr string) error {
	_, err := Command(addr, "PING")
	if err != nil && strings.HasPrefix(err.Error(), "NOAUTH") {
		return nil
	}
	return err
}

// Command sends one command to addr over a fresh connection and returns the
// first line of the reply (a Redis error reply as an error), for simple test
// plumbing. It waits at most a second.
func Command(addr string, args ...string) (string, error) {
	lines, err := Commands(addr, args)
	if err != nil {
		return "", err
	}
	line := lines[0]
	if line == "+PONG" || args[0] != "PING" {
		return line, nil
	}
	return "", fmt.Errorf("unexpected answer %q to PING", line)
}

// Commands sends cmds in order over one fresh connection, as a command
// that depends on its connection's earlier writes needs (WAIT), and returns
// each reply's first line; the first Redis error reply is returned as an
// error. Replies must be simple strings, integers or bulk strings. It waits
// at most a second.
func Commands(addr string, cmds ...[]string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	var b bytes.Buffer
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	lines := make([]string, len(cmds))
	for i := range cmds {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "-") {
			return nil, errors.New(line[1:])
		}
		if err := skipBulk(r, line); err != nil {
			return nil, err
		}
		lines[i] = line
	}
	return lines, nil
}

// skipBulk reads past the payload of a bulk string reply whose first line
// is line (nothing for any other reply or a nil bulk string).
func skipBulk(r *bufio.Reader, line string) error {
	size, ok := strings.CutPrefix(line, "$")
	if n, err := strconv.Atoi(size); ok && err == nil && n >= 0 {
		_, err = r.Discard(n + 2)
		return err
	}
	return nil
}

// binaries
var (
	redisServer = "redis-server"
	redisCLI    = "redis-cli"
)

// need skips or fails t when one of the binaries is missing.
func need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv(RequireEnv) == "1" {
				t.Fatalf("%s is not installed, and %s=1 forbids skipping", b, RequireEnv)
			}
			t.Skipf("%s is not installed (set %s=1 to make this a failure)", b, RequireEnv)
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newInstance starts a server in its own directory under dir, retrying on
// another port when the chosen one was taken in the meantime.
func newInstance(dir string, cluster bool, extra []string) (*Instance, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		i := &Instance{port: port, args: extra}
		if cluster {
			if i.busPort, err = freePort(); err != nil {
				return nil, err
			}
			i.args = append([]string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-port", strconv.Itoa(i.busPort),
				"--cluster-node-timeout", "2000",
			}, extra...)
		}
		i.dir, err = os.MkdirTemp(dir, "redis-"+strconv.Itoa(port)+"-")
		if err != nil {
			return nil, err
		}
		if lastErr = i.start(); lastErr == nil {
			return i, nil
		}
	}
	return nil, lastErr
}

// Server starts a new redis-server owned by t, with extra arguments passed
// on its command line (e.g. "--maxmemory", "10mb"), and stops it when t ends.
func Server(t testing.TB, extra ...string) *Instance {
	t.Helper()
	need(t, redisServer)
	i, err := newInstance(t.TempDir(), false, extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = i.kill() })
	return i
}

// ClusterInstance is a running Redis Cluster of three masters, with or
// without replicas.
type ClusterInstance struct {
	// Nodes are the three master processes (as started: after a failover
	// one of them may be a replica, or dead).
	Nodes []*Instance
	// Replicas[i] replicates Nodes[i] (as started); empty for Cluster.
	Replicas []*Instance
}

// Addrs returns the "host:port" of every node, masters first, the seed
// list for a client.
func (c *ClusterInstance) Addrs() []string {
	var out []string
	for _, n := range append(c.Nodes[:len(c.Nodes):len(c.Nodes)], c.Replicas...) {
		out = append(out, n.Addr())
	}
	return out
}

func (c *ClusterInstance) kill() {
	for _, n := range append(c.Nodes[:len(c.Nodes):len(c.Nodes)], c.Replicas...) {
		_ = n.kill()
	}
}

// Cluster starts a new three-master Redis Cluster owned by t (no replicas),
// waits until every node reports cluster_state:ok with all 16384 slots
// assigned, and stops it when t ends.
func Cluster(t testing.TB) *ClusterInstance {
	t.Helper()
	need(t, redisServer, redisCLI)
	c, err := newCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.kill)
	return c
}

func newCluster(dir string) (*ClusterInstance, error) {
	c := &ClusterInstance{}
	for range 3 {
		n, err := newInstance(dir, true, nil)
		if err != nil {
			c.kill()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, redisCLI, args...).CombinedOutput()
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := clusterInfo(n.Addr())
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				c.kill()
				return nil, fmt.Errorf("cluster node %s not ready: %v\n%s", n.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c, nil
}

// clusterInfo returns the text of CLUSTER INFO from addr.
func clusterInfo(addr string) (string, error) {
	out, err := exec.Command(redisCLI, "-h", "127.0.0.1", "-p", addr[strings.LastIndex(addr, ":")+1:], "CLUSTER", "INFO").CombinedOutput()
	return string(out), err
}

// Shared servers, one per test binary.
var (
	sharedMu      sync.Mutex
	sharedServer  *Instance
	sharedCluster *ClusterInstance
	sharedDir     string
	sharedErr     error
	clusterErr    error
)

func sharedTempDir() (string, error) {
	if sharedDir == "" {
		d, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			return "", err
		}
		sharedDir = d
	}
	return sharedDir, nil
}

// Shared returns the test binary's shared redis-server, starting it on
// first use. Tests must not stop or pause it; they isolate their data with
// a unique key prefix (Prefix). Call Main from TestMain to stop it.
func Shared(t testing.TB) *Instance {
	t.Helper()
	need(t, redisServer)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedServer == nil && sharedErr == nil {
		dir, err := sharedTempDir()
		if err == nil {
			sharedServer, err = newInstance(dir, false, nil)
		}
		sharedErr = err
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedServer
}

// SharedCluster returns the test binary's shared three-master cluster,
// starting it on first use. Call Main from TestMain to stop it.
func SharedCluster(t testing.TB) *ClusterInstance {
	t.Helper()
	need(t, redisServer, redisCLI)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedCluster == nil && clusterErr == nil {
		dir, err := sharedTempDir()
		if err == nil {
			sharedCluster, err = newCluster(dir)
		}
		clusterErr = err
	}
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return sharedCluster
}

// Main runs the tests and then stops the shared servers and removes their
// files. Use it as os.Exit(redistest.Main(m)) in TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedServer != nil {
		_ = sharedServer.kill()
	}
	if sharedCluster != nil {
		sharedCluster.kill()
	}
	if sharedDir != "" {
		_ = os.RemoveAll(sharedDir)
	}
	return code
}

var prefixSeq atomic.Int64

// Prefix returns a key prefix unique within the machine for this process:
// "tlt<pid>n<seq>". Use one per store on a shared server.
func Prefix() string {
	return fmt.Sprintf("tlt%dn%d", os.Getpid(), prefixSeq.Add(1))
}
