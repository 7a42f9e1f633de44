package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit"
)

// envOf turns a map into a getenv function.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// result is what one run of the CLI did.
type result struct {
	err            error
	code           int
	stdout, stderr string
}

// cli runs the CLI in-process with the given environment and stdin.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut testkit.SyncBuffer
	err := run(context.Background(), append([]string{"tokenledger"}, args...), envOf(env), strings.NewReader(stdin), &out, &errOut)
	var code bytes.Buffer
	r := result{err: err, stdout: out.String()}
	r.code = exitCode(err, &code)
	r.stderr = errOut.String() + code.String()
	return r
}

// liveServer is `tokenledger serve` running in-process.
type liveServer struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	stderr *testkit.SyncBuffer
}

// listenWatcher collects stdout and reports the URL once serve prints it.
type listenWatcher struct {
	testkit.SyncBuffer
	once sync.Once
	url  chan string
}

func (w *listenWatcher) Write(p []byte) (int, error) {
	n, err := w.SyncBuffer.Write(p)
	if _, after, ok := strings.Cut(w.String(), "tokenledger listening on "); ok {
		if line, _, ok := strings.Cut(after, "\n"); ok {
			w.once.Do(func() { w.url <- line })
		}
	}
	return n, err
}

// startServer runs serve on 127.0.0.1:0 and waits until /healthz answers.
func startServer(t *testing.T, env map[string]string, extra ...string) *liveServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &liveServer{cancel: cancel, done: make(chan error, 1), stderr: &testkit.SyncBuffer{}}
	out := &listenWatcher{url: make(chan string, 1)}
	args := append([]string{"tokenledger", "serve", "--addr", "127.0.0.1:0"}, extra...)
	go func() { s.done <- run(ctx, args, envOf(env), strings.NewReader(""), out, s.stderr) }()
	select {
	case s.url = <-out.url:
	case err := <-s.done:
		cancel()
		t.Fatalf("serve ended before listening: %v\n%s", err, s.stderr)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("serve did not print its address in 10s\n%s", s.stderr)
	}
	t.Cleanup(func() { s.stop(t) })
	waitHealthy(t, s.url)
	return s
}

// stop cancels the server's context and waits for run to return.
func (s *liveServer) stop(t *testing.T) {
	t.Helper()
	if s.done == nil {
		return
	}
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve returned %v\n%s", err, s.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("serve did not stop in 20s\n%s", s.stderr)
	}
	s.done = nil
}

// waitHealthy polls url/healthz until it answers 200.
func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 in 10s (last error %v)", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call makes one request and returns the status and the decoded body.
func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, url, err, raw)
	}
	return resp.StatusCode, m
}
