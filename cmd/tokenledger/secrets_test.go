package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
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
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// Every secret of the test environment holds this marker, and so do the
// wrong keys the test sends (a wrong key may be someone's real key for
// something else), so that a secret cut short or changed a little is still
// found. Nothing else the test sends holds it.
const secretMarker = "SECRET"

// secretValues are recognisable values for every secret variable.
var secretValues = map[string]string{
	"KV_REST_API_TOKEN":        "SECRETkvresttoken0001",
	"UPSTASH_REDIS_REST_TOKEN": "SECRETupstashtoken0002",
	"TOKENLEDGER_API_KEY":      "SECRETapikey0005-abcdefgh",
	"TOKENLEDGER_READ_KEY":     "SECRETreadkey0006-abcdefgh",
	"TOKENLEDGER_ADMIN_KEY":    "SECRETadminkey0007-abcdefgh",
}

const (
	redisPassword = "SECRETredispw0003"
	kvURLPassword = "SECRETkvurlpw0004"
)

// leakScanner collects everything the program showed, labelled by where
// it came from, and fails the test for each secret it contains.
type leakScanner struct {
	mu     sync.Mutex
	labels []string
	seen   []string
}

func (s *leakScanner) add(label, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.labels = append(s.labels, label)
	s.seen = append(s.seen, text)
}

func (s *leakScanner) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	secrets := []string{secretMarker, redisPassword, kvURLPassword}
	for _, v := range secretValues {
		secrets = append(secrets, v)
	}
	total := 0
	for k, text := range s.seen {
		total += len(text)
		for _, sec := range secrets {
			if i := strings.Index(text, sec); i >= 0 {
				lo, hi := max(0, i-120), min(len(text), i+len(sec)+40)
				t.Errorf("a secret (%s) got out in %s: %s", sec, s.labels[k], strings.ReplaceAll(text[lo:hi], "\n", "⏎"))
			}
		}
	}
	t.Logf("scanned %d outputs, %d bytes", len(s.seen), total)
	if dump := os.Getenv("TOKENLEDGER_DUMP_LEAK_SCAN"); dump != "" {
		for k, text := range s.seen {
			if strings.Contains(s.labels[k], dump) {
				t.Logf("%s:\n%s", s.labels[k], text)
			}
		}
	}
	if total == 0 {
		t.Error("nothing was scanned")
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// secretEnv is an environment with every secret variable set, the REST
// API and Redis pointing at restURL and redisAddr, and overrides applied
// ("" deletes a variable).
func secretEnv(t *testing.T, restURL, redisAddr string, overrides map[string]string) map[string]string {
	dir := t.TempDir()
	env := map[string]string{
		"KV_REST_API_URL":        restURL,
		"UPSTASH_REDIS_REST_URL": restURL,
		"REDIS_URL":              "redis://default:" + redisPassword + "@" + redisAddr + "/0",
		"KV_URL":                 "redis://user:" + kvURLPassword + "@" + redisAddr,
		"TOKENLEDGER_FILE":       filepath.Join(dir, "usage.json"),
		"TOKENLEDGER_SPOOL_DIR":  filepath.Join(dir, "spool"),
		"TOKENLEDGER_DB_TIMEOUT": "300ms",
		"TOKENLEDGER_LOG_LEVEL":  "debug",
	}
	for k, v := range secretValues {
		env[k] = v
	}
	for k, v := range overrides {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return env
}

// environ turns env into a process environment (with PATH, and nothing
// else from this process).
func environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// runBinary runs the built command to its end and scans what it printed.
func runBinary(t *testing.T, s *leakScanner, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = environ(env)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("tokenledger %s did not end in 60 s", strings.Join(args, " "))
	}
	label := "tokenledger " + strings.Join(args, " ")
	s.add(label+" stdout", out.String())
	s.add(label+" stderr", errOut.String())
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// servedBinary is `tokenledger serve` running as its own process.
type servedBinary struct {
	url    string
	cmd    *exec.Cmd
	stdout *testkit.SyncBuffer
	stderr *testkit.SyncBuffer
	done   chan error
}

// serveBinary starts the built command's serve on 127.0.0.1:0.
func serveBinary(t *testing.T, env map[string]string) *servedBinary {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0")
	cmd.Env = environ(env)
	b := &servedBinary{cmd: cmd, stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = b.stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			fmt.Fprintln(b.stdout, sc.Text())
			if u, ok := strings.CutPrefix(sc.Text(), "tokenledger listening on "); ok {
				urls <- u
			}
		}
	}()
	go func() { b.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-b.done
		}
	})
	select {
	case b.url = <-urls:
	case err := <-b.done:
		t.Fatalf("serve exited before listening: %v\n%s", err, b.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not listen in 20 s\n%s", b.stderr)
	}
	waitHealthy(t, b.url)
	return b
}

// stop ends serve with SIGTERM and scans all it printed.
func (b *servedBinary) stop(t *testing.T, s *leakScanner) {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
		t.Error("serve did not stop in 30 s after SIGTERM")
	}
	s.add("serve stdout", b.stdout.String())
	s.add("serve stderr", b.stderr.String())
}

// exchange is one request: method, path, body and headers.
type exchange struct {
	method, path, body string
	header             []string
}

// exerciseHTTP sends every kind of request — every endpoint, method,
// missing, wrong and right keys, bad bodies and queries — and scans
// every answer's status line, headers and body.
func exerciseHTTP(t *testing.T, s *leakScanner, url string) {
	t.Helper()
	ev := `{"id":"leak-1","model":"gpt-4o","promptTokens":5,"completionTokens":1}`
	var list []exchange
	creds := [][]string{
		nil,
		{"Authorization", "Bearer " + secretValues["TOKENLEDGER_API_KEY"]},
		{"Authorization", "Bearer " + secretValues["TOKENLEDGER_READ_KEY"]},
		{"X-API-Key", secretValues["TOKENLEDGER_ADMIN_KEY"]},
		{"Authorization", "Bearer SECRETwrongkey-abcdefgh"},
		{"Authorization", "Basic U0VDUkVUOlNFQ1JFVA=="},
	}
	for _, c := range creds {
		list = append(list,
			exchange{"POST", "/api/tokens", ev, c},
			exchange{"POST", "/api/tokens", `{"model":"x","promtTokens":1}`, c},
			exchange{"POST", "/api/tokens", `[` + strings.Repeat(`{"model":"m"},`, 1000) + `{"model":"m"}]`, c},
			exchange{"GET", "/api/tokens", "", c},
			exchange{"GET", "/api/tokens?action=all&days=91", "", c},
			exchange{"GET", "/api/tokens?action=history&days=hunter2", "", c},
			exchange{"GET", "/api/tokens?action=date&date=2026-13-01", "", c},
			exchange{"HEAD", "/api/tokens?action=stats", "", c},
		)
	}
	list = append(list,
		exchange{"DELETE", "/api/tokens", "", nil},
		exchange{"DELETE", "/api/tokens", "", []string{"Authorization", "Bearer SECRETwrongadmin-abcdefgh"}},
		exchange{"DELETE", "/api/tokens", "", []string{"Authorization", "Bearer " + secretValues["TOKENLEDGER_API_KEY"]}},
		exchange{"DELETE", "/api/tokens", "", []string{"Authorization", "Bearer " + secretValues["TOKENLEDGER_ADMIN_KEY"]}},
		exchange{"PUT", "/api/tokens", "", nil},
		exchange{"GET", "/api/test", "", nil},
		exchange{"POST", "/api/test", "", nil},
		exchange{"GET", "/healthz", "", nil},
		exchange{"GET", "/readyz", "", nil},
		exchange{"GET", "/api/token", "", nil},
		exchange{"GET", "/.env", "", nil},
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for _, x := range list {
		var rd io.Reader
		if x.body != "" {
			rd = strings.NewReader(x.body)
		}
		req, err := http.NewRequest(x.method, url+x.path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if x.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(x.header); i += 2 {
			req.Header.Set(x.header[i], x.header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", x.method, x.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var h strings.Builder
		_ = resp.Header.Write(&h)
		s.add(fmt.Sprintf("%s %s answer", x.method, x.path), resp.Status+"\n"+h.String()+"\n"+string(body))
	}
}

// exerciseCLI runs every command, and every command's help, with env.
func exerciseCLI(t *testing.T, s *leakScanner, env map[string]string) {
	t.Helper()
	for _, args := range [][]string{
		{}, {"--help"}, {"nonsense"},
		{"serve", "--help"}, {"log", "--help"}, {"report", "--help"}, {"test", "--help"}, {"migrate", "--help"},
		{"log", "--model", "gpt-4o", "--prompt", "5", "--id", "cli-1"},
		{"log", "--model", "gpt-4o", "--prompt", "hunter2"},
		{"report", "--days", "3"}, {"report", "--json"},
		{"test"},
		{"migrate"},
		{"serve", "--addr", "256.0.0.1:99999"},
	} {
		runBinary(t, s, env, "", args...)
	}
	runBinary(t, s, env, `{"model":"gpt-4o","promptTokens":1}`, "log", "--stdin")
}

// TestNoSecretLeaks sets every secret variable to a recognisable value
// and runs every command, endpoint and failure path it can reach —
// memory store, Redis and the REST API down (closed ports), Redis with a
// wrong password, the REST API with a wrong token, configurations that
// do not load — then scans stdout, stderr, and every HTTP answer's
// status, headers and body for each secret.
func TestNoSecretLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary many times")
	}
	down := closedPort(t)
	downURL := "http://" + closedPort(t)
	s := &leakScanner{}

	t.Run("memory store, every endpoint", func(t *testing.T) {
		env := secretEnv(t, downURL, down, map[string]string{"TOKENLEDGER_STORE": "memory"})
		b := serveBinary(t, env)
		exerciseHTTP(t, s, b.url)
		b.stop(t, s)
		exerciseCLI(t, s, env)
	})
	t.Run("rate limited", func(t *testing.T) {
		env := secretEnv(t, downURL, down, map[string]string{"TOKENLEDGER_STORE": "memory", "TOKENLEDGER_RATE_LIMIT": "0.01", "TOKENLEDGER_RATE_BURST": "2"})
		b := serveBinary(t, env)
		exerciseHTTP(t, s, b.url)
		b.stop(t, s)
	})
	t.Run("Redis down", func(t *testing.T) {
		env := secretEnv(t, downURL, down, map[string]string{"TOKENLEDGER_STORE": "redis"})
		b := serveBinary(t, env)
		exerciseHTTP(t, s, b.url)
		b.stop(t, s)
		exerciseCLI(t, s, env)
	})
	t.Run("REST API down", func(t *testing.T) {
		env := secretEnv(t, downURL, down, map[string]string{"TOKENLEDGER_STORE": "kv"})
		b := serveBinary(t, env)
		exerciseHTTP(t, s, b.url)
		b.stop(t, s)
		exerciseCLI(t, s, env)
	})
	t.Run("configurations that do not load", func(t *testing.T) {
		for _, o := range []map[string]string{
			{"TOKENLEDGER_API_KEY": "SECRETshort"},
			{"TOKENLEDGER_READ_KEY": "SECRET with spaces 0123456789"},
			{"TOKENLEDGER_ADMIN_KEY": secretValues["TOKENLEDGER_API_KEY"]},
			{"REDIS_URL": "redis://u:SECRETbadurl0008@127.0.0.1:notaport"},
			// Passwords that are not URL-escaped: url.Parse takes part of
			// them for the host and the rest for the path, query or fragment.
			{"REDIS_URL": "redis://user:12/SECRETslashpw0011@redis.example.com:6379/0"},
			{"REDIS_URL": "redis://user:12?SECRETquerypw0012@redis.example.com:6379/0"},
			{"KV_URL": "redis://user:ab#SECREThashpw0013@redis.example.com:6379"},
			{"KV_URL": "http://u:SECRETbadscheme0009@127.0.0.1:1"},
			{"KV_REST_API_URL": "http://u:SECRETinresturl0010@127.0.0.1:1"},
			{"KV_REST_API_URL": ""},
			{"TOKENLEDGER_STORE": "postgres"},
		} {
			env := secretEnv(t, downURL, down, o)
			for _, args := range [][]string{{"serve"}, {"test"}, {"report"}, {"log", "--model", "m"}, {"migrate"}} {
				if code, _, _ := runBinary(t, s, env, "", args...); code == 0 {
					t.Errorf("tokenledger %v with %v succeeded", args, o)
				}
			}
		}
	})
	t.Run("serve refuses an open address", func(t *testing.T) {
		env := secretEnv(t, downURL, down, map[string]string{"TOKENLEDGER_STORE": "memory", "TOKENLEDGER_API_KEY": "", "PORT": "0"})
		if code, _, stderr := runBinary(t, s, env, "", "serve"); code != 1 || !strings.Contains(stderr, "--insecure") {
			t.Errorf("serve on :0 without an API key: exit %d, %s", code, stderr)
		}
	})
	t.Run("Redis with a wrong password", func(t *testing.T) {
		srv := redistest.Server(t, "--requirepass", "the-right-password-1")
		env := secretEnv(t, downURL, srv.Addr(), map[string]string{"TOKENLEDGER_STORE": "redis"})
		b := serveBinary(t, env)
		exerciseHTTP(t, s, b.url)
		b.stop(t, s)
		exerciseCLI(t, s, env)
	})
	t.Run("REST API with a wrong token", func(t *testing.T) {
		srv := redistest.Server(t)
		front := kvresttest.Start(t, srv.Addr(), kvresttest.Options{Token: "the-right-token-1"})
		env := secretEnv(t, front.URL(), srv.Addr(), map[string]string{"TOKENLEDGER_STORE": "kv"})
		b := serveBinary(t, env)
		exerciseHTTP(t, s, b.url)
		b.stop(t, s)
		exerciseCLI(t, s, env)
	})
	s.check(t)
	// The failure paths were reached, so the scan above means something.
	s.expect(t, "401 Unauthorized", "403 Forbidden", "429 Too Many Requests", "503 Service Unavailable",
		"connect: connection refused", "WRONGPASS", "the REST token was rejected", "must be at least 16 characters",
		"refusing to listen", "storage check failed", "All token usage data has been reset", "Usage: tokenledger serve")
}

// expect fails the test for each of wants that no output holds.
func (s *leakScanner) expect(t *testing.T, wants ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	all := strings.Join(s.seen, "\n")
	for _, w := range wants {
		if !strings.Contains(all, w) {
			t.Errorf("no output holds %q: that path was not exercised", w)
		}
	}
}
