package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit"
	"github.com/tokenledger/tokenledger/store/fallback"
)

// TestMain removes the built binary when the tests end.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// The binary and its processes

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// binary builds the tokenledger command once per test binary. It is built
// without -race (fast children; this test binary has the race detector)
// unless FAULTTEST_CHILD_RACE=1.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "faulttest-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "tokenledger")
		args := []string{"build", "-o", binPath}
		if os.Getenv("FAULTTEST_CHILD_RACE") == "1" {
			args = append(args, "-race")
		}
		args = append(args, "github.com/tokenledger/tokenledger/cmd/tokenledger")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// childEnv returns the environment of a child: this process's environment
// without any tokenledger, database or platform setting, plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "TOKENLEDGER_"), strings.HasPrefix(name, "REDIS_"),
			strings.HasPrefix(name, "KV_"), strings.HasPrefix(name, "UPSTASH_"),
			strings.HasPrefix(name, "VERCEL"), name == "PORT":
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// server is one `tokenledger serve` child process.
type server struct {
	name   string
	env    map[string]string
	cmd    *exec.Cmd
	url    string
	stderr *testkit.SyncBuffer
	urls   chan string
	waited chan error
	exited bool
}

// startServe starts `tokenledger serve --addr 127.0.0.1:0` with env and
// waits until it prints its address and /healthz answers.
func startServe(t testing.TB, name string, env map[string]string) *server {
	t.Helper()
	s := spawnServe(t, name, env)
	s.ready(t)
	return s
}

// spawnServe starts the process and returns at once; ready waits for it.
// Several spawns followed by their readies start processes together.
func spawnServe(t testing.TB, name string, env map[string]string) *server {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0")
	cmd.Env = childEnv(env)
	setDeathSignal(cmd)
	s := &server{name: name, env: env, cmd: cmd, stderr: &testkit.SyncBuffer{}, urls: make(chan string, 1), waited: make(chan error, 1)}
	cmd.Stderr = s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "tokenledger listening on "); ok {
				s.urls <- u
			}
		}
		s.waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if !s.exited {
			_ = cmd.Process.Kill()
			<-s.waited
			s.exited = true
		}
		if t.Failed() {
			t.Logf("--- log of %s (pid %d) ---\n%s", s.name, cmd.Process.Pid, tail(s.stderr.String(), 6000))
		}
	})
	return s
}

// ready waits until the process prints its address and /healthz answers.
func (s *server) ready(t testing.TB) {
	t.Helper()
	select {
	case s.url = <-s.urls:
	case err := <-s.waited:
		s.exited = true
		t.Fatalf("%s exited before listening: %v\n%s", s.name, err, s.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not print its address in 60s\n%s", s.name, s.stderr)
	}
	waitHealthy(t, s.url)
}

// kill ends the process with SIGKILL and waits until it is gone.
func (s *server) kill(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s: %v", s.name, err)
	}
	<-s.waited
	s.exited = true
}

// stop ends the process with SIGTERM and checks that it exits cleanly.
func (s *server) stop(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", s.name, err)
	}
	select {
	case err := <-s.waited:
		s.exited = true
		if err != nil {
			t.Fatalf("%s after SIGTERM: %v\n%s", s.name, err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of SIGTERM\n%s", s.name, s.stderr)
	}
}

// log returns what the process logged so far.
func (s *server) log() string { return s.stderr.String() }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// runCLI runs the binary with args and env and returns its stdout; a
// non-zero exit fails the test.
func runCLI(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = childEnv(env)
	setDeathSignal(cmd)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("tokenledger %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// ---------------------------------------------------------------------------
// HTTP

// httpClient is shared by every test; its timeout is a liveness bound,
// far above what any answer should take.
var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 0},
}

// waitHealthy polls url/healthz until it answers 200.
func waitHealthy(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := httpClient.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 in 20s (last error %v)", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postAnswer is the body of a 200 answer to POST /api/tokens (or, with
// Error, of an error answer).
type postAnswer struct {
	Accepted    int      `json:"accepted"`
	Duplicates  int      `json:"duplicates"`
	IDs         []string `json:"ids"`
	StorageType string   `json:"storageType"`
	Degraded    bool     `json:"degraded"`
	Error       string   `json:"error"`
}

// post sends events to url/api/tokens as one batch. err is set when no
// HTTP answer arrived (connection refused or reset, timeout).
func post(ctx context.Context, url string, events []event) (int, postAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/api/tokens", strings.NewReader(batchJSON(events)))
	if err != nil {
		return 0, postAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, postAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, postAnswer{}, err
	}
	var a postAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return resp.StatusCode, a, fmt.Errorf("answer %d is not JSON: %v: %q", resp.StatusCode, err, raw)
	}
	return resp.StatusCode, a, nil
}

// mustPost posts events, requires a 200 and returns the answer.
func mustPost(t testing.TB, url string, events []event) postAnswer {
	t.Helper()
	status, a, err := post(context.Background(), url, events)
	if err != nil || status != 200 {
		t.Fatalf("POST %d events to %s: %d %+v %v", len(events), url, status, a, err)
	}
	if len(a.IDs) != len(events) || a.Accepted+a.Duplicates != len(events) {
		t.Fatalf("POST %d events: answer %+v does not account for every event", len(events), a)
	}
	return a
}

// get GETs url and returns the status and body.
func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, raw
}

// testReport is the part of GET /api/test the tests look at.
type testReport struct {
	Status   string `json:"status"`
	Database struct {
		Kind      string  `json:"kind"`
		Connected bool    `json:"connected"`
		Error     *string `json:"error"`
	} `json:"database"`
	Fallback  fallback.Status `json:"fallback"`
	Migration struct {
		Ran               bool   `json:"ran"`
		Migrated          int    `json:"migrated"`
		Skipped           int    `json:"skipped"`
		AlreadyInDatabase int    `json:"alreadyInDatabase"`
		File              string `json:"file"`
		AlreadyMigrated   bool   `json:"alreadyMigrated"`
		Error             string `json:"error"`
	} `json:"migration"`
}

// apiTest returns the decoded GET /api/test answer and its status.
func apiTest(t testing.TB, url string) (int, testReport) {
	t.Helper()
	status, raw := get(t, url+"/api/test")
	var r testReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("/api/test: %v\n%s", err, raw)
	}
	return status, r
}

// waitDrained polls /api/test until the spool is empty, fallback has
// ended and the check passes.
func waitDrained(t testing.TB, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, r := apiTest(t, url)
		if status == 200 && r.Status == "ok" && !r.Fallback.Active && r.Fallback.PendingEvents == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the spool did not drain within %s: /api/test %d %+v", url, within, status, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Events
