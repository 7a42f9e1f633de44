package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds the tokenledger command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tokenledger-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "tokenledger")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// child is `tokenledger serve` running as a separate process.
type child struct {
	cmd    *exec.Cmd
	url    string
	stderr *testkit.SyncBuffer
	waited chan error
}

// startChild starts the binary's serve on 127.0.0.1:0 over the file at
// path, and waits until /healthz answers.
func startChild(t *testing.T, path string) *child {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKENLEDGER_") && !strings.HasPrefix(kv, "REDIS_") && !strings.HasPrefix(kv, "KV_") && !strings.HasPrefix(kv, "PORT=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "TOKENLEDGER_STORE=file", "TOKENLEDGER_FILE="+path)
	c := &child{cmd: cmd, stderr: &testkit.SyncBuffer{}, waited: make(chan error, 1)}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.waited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-c.waited
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "tokenledger listening on "); ok {
				lines <- u
			}
		}
	}()
	select {
	case c.url = <-lines:
	case err := <-c.waited:
		t.Fatalf("serve exited before listening: %v\n%s", err, c.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not print its address in 20s\n%s", c.stderr)
	}
	waitHealthy(t, c.url)
	return c
}

// sentEvent is one event a client sent, with whether it was acknowledged.
type sentEvent struct {
	ID, Model, Timestamp string
	Prompt               int
}

func (e sentEvent) json() string {
	return fmt.Sprintf(`{"id":%q,"model":%q,"promptTokens":%d,"timestamp":%q}`, e.ID, e.Model, e.Prompt, e.Timestamp)
}

func batchBody(evs []sentEvent) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = e.json()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestCrashKeepsAcknowledgedEvents kills the server with SIGKILL while
// several clients post, restarts it on the same file, and checks that
// every acknowledged event is counted exactly once.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	path := filepath.Join(t.TempDir(), "token_usage.json")
	c := startChild(t, path)
	ts := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)

	const clients = 8
	var (
		mu    sync.Mutex
		acked []sentEvent
		sent  atomic.Int64
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				n := 1 + i%5
				evs := make([]sentEvent, n)
				for j := range evs {
					evs[j] = sentEvent{ID: fmt.Sprintf("c%d-%d-%d", w, i, j), Model: fmt.Sprintf("m%d", j%3), Timestamp: ts, Prompt: 1 + j}
				}
				sent.Add(int64(n))
				resp, err := client.Post(c.url+"/api/tokens", "application/json", strings.NewReader(batchBody(evs)))
				if err != nil {
					return // the server is gone
				}
				var body struct{ Accepted, Duplicates int }
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					return
				}
				if body.Accepted != n {
					t.Errorf("batch of %d new events: accepted %d", n, body.Accepted)
				}
				mu.Lock()
				acked = append(acked, evs...)
				mu.Unlock()
			}
		}()
	}
	// Let the clients get going, then kill the server mid-stream.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.waited
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no event was acknowledged before the kill\n%s", c.stderr)
	}
	t.Logf("sent %d events, %d acknowledged before SIGKILL", sent.Load(), len(acked))

	c2 := startChild(t, path)
	// Every acknowledged event must already be counted: re-posting it is a
	// duplicate, every one.
	for i := 0; i < len(acked); i += 1000 {
		chunk := acked[i:min(i+1000, len(acked))]
		status, body := call(t, "POST", c2.url+"/api/tokens", batchBody(chunk))
		if status != 200 {
			t.Fatalf("re-post: %d %v", status, body)
		}
		if body["accepted"] != 0.0 || body["duplicates"] != float64(len(chunk)) {
			t.Errorf("re-posting %d acknowledged events: accepted %v, duplicates %v (want 0 and all)", len(chunk), body["accepted"], body["duplicates"])
		}
	}
	status, body := call(t, "GET", c2.url+"/api/tokens?action=stats", "")
	if status != 200 {
		t.Fatalf("stats: %d %v", status, body)
	}
	total := int64(body["stats"].(map[string]any)["totalRequests"].(float64))
	if total < int64(len(acked)) || total > sent.Load() {
		t.Errorf("totalRequests = %d, want between %d acknowledged and %d sent", total, len(acked), sent.Load())
	}

	// A clean stop (SIGTERM) exits 0 and leaves a file the CLI can read.
	if err := c2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c2.waited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, c2.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM\n%s", c2.stderr)
	}
	report := exec.Command(binary(t), "report", "--json", "--days", "1")
	report.Env = c2.cmd.Env
	var out, errOut bytes.Buffer
	report.Stdout, report.Stderr = &out, &errOut
	if err := report.Run(); err != nil {
		t.Fatalf("report after restart: %v\n%s", err, errOut.String())
	}
	var rep struct {
		Stats struct{ TotalRequests int64 }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report output: %v\n%s", err, out.String())
	}
	if rep.Stats.TotalRequests != total {
		t.Errorf("report after stop counts %d requests, the server counted %d", rep.Stats.TotalRequests, total)
	}
}
