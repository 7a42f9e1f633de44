package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/config"
)

// benchArgs are the flags every bench test uses.
func benchArgs(url string, extra ...string) []string {
	return append([]string{"bench", "--url", url, "-c", "8", "--quiet"}, extra...)
}

func TestBenchVerifiesLiveServer(t *testing.T) {
	s := startServer(t, fileEnv(filepath.Join(t.TempDir(), "token_usage.json")))
	for _, extra := range [][]string{
		{"-n", "2000", "--resend", "0.05"}, // on an empty store
		{"-n", "5000", "--batch", "100", "--resend", "0.05", "--models", "20", "--users", "1000", "--into-live-data"},
		{"-d", "300ms", "--into-live-data"},
	} {
		r := cli(t, nil, "", benchArgs(s.url, extra...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "verify      ok: this run's") || !strings.Contains(r.stdout, "errors      none") {
			t.Fatalf("bench %v: exit %d\nstdout:\n%s\nstderr:\n%s", extra, r.code, r.stdout, r.stderr)
		}
	}

	// --json: the same figures for machines.
	r := cli(t, nil, "", benchArgs(s.url, "-n", "300", "--json", "--into-live-data")...)
	var res struct {
		Events  int64 `json:"events"`
		Latency struct {
			P99 float64 `json:"p99"`
		} `json:"latencyMs"`
		Verify struct {
			OK bool `json:"ok"`
		} `json:"verify"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res.Events != 300 || !res.Verify.OK || res.Latency.P99 <= 0 {
		t.Fatalf("--json: exit %d, %v, %+v\n%s", r.code, err, res, r.stdout)
	}
}

// realHandler is the API that serve runs, on the file store at path.
func realHandler(t *testing.T, path string) http.Handler {
	t.Helper()
	cfg, err := config.Load(envOf(fileEnv(path)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a.Handler()
}

// dropEveryTenth wraps the API: every tenth event posted is answered as
// accepted but never reaches the store.
func dropEveryTenth(next http.Handler) http.Handler {
	var seen atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var events []json.RawMessage
		single := json.Unmarshal(body, &events) != nil
		if single {
			events = []json.RawMessage{body}
		}
		var keep []json.RawMessage
		var droppedIDs []string
		for _, ev := range events {
			if seen.Add(1)%10 == 0 {
				var e struct{ ID string }
				_ = json.Unmarshal(ev, &e)
				droppedIDs = append(droppedIDs, e.ID)
				continue
			}
			keep = append(keep, ev)
		}
		answer := map[string]any{"accepted": 0, "duplicates": 0, "ids": []string{}, "storageType": "file-system", "degraded": false}
		if len(keep) > 0 {
			fwd := keep[0]
			if !single {
				fwd, _ = json.Marshal(keep)
			}
			req := r.Clone(r.Context())
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(fwd)), int64(len(fwd))
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &answer)
		}
		accepted, _ := answer["accepted"].(float64)
		answer["accepted"] = int(accepted) + len(droppedIDs)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
}

func TestBenchCatchesDroppingServer(t *testing.T) {
	for _, batch := range []string{"1", "10"} {
		t.Run("batch="+batch, func(t *testing.T) {
			srv := httptest.NewServer(dropEveryTenth(realHandler(t, filepath.Join(t.TempDir(), "token_usage.json"))))
			defer srv.Close()
			r := cli(t, nil, "", benchArgs(srv.URL, "-n", "1000", "--batch", batch)...)
			if r.code != 1 || !strings.Contains(r.stderr, "tokenledger: bench: mismatch: the service counted 900 events") ||
				!strings.Contains(r.stderr, "where it acknowledged 1,000 events") || !strings.Contains(r.stderr, "100 events missing") {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 1 { // the run's first line and the error
				t.Errorf("the failure is not one line:\n%s", r.stderr)
			}
		})
	}
}

// flaky wraps the API: of the first 1,000 POSTs, every 5th is stored and
// then answered 503, every 7th is stored and answered too late for the
// client. Later POSTs (the re-sends) go through.
func flaky(next http.Handler, late time.Duration) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		i := n.Add(1)
		switch {
		case i <= 1000 && i%5 == 0:
			next.ServeHTTP(httptest.NewRecorder(), r)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"Storage is unavailable right now; try again later"}`)
		case i <= 1000 && i%7 == 0:
			next.ServeHTTP(httptest.NewRecorder(), r)
			select {
			case <-time.After(late):
			case <-r.Context().Done():
			}
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func TestBenchNoFalseAlarmOnUnknownOutcomes(t *testing.T) {
	srv := httptest.NewServer(flaky(realHandler(t, filepath.Join(t.TempDir(), "token_usage.json")), 2*time.Second))
	defer srv.Close()
	r := cli(t, nil, "", benchArgs(srv.URL, "-n", "1000", "--timeout", "300ms", "--resend", "0.05")...)
	if r.code != 0 || !strings.Contains(r.stdout, "verify      ok:") || !strings.Contains(r.stdout, "HTTP 503") ||
		!strings.Contains(r.stdout, "timeout") || !strings.Contains(r.stdout, "still unknown") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestBenchAPIKey(t *testing.T) {
	key := "bench-test-key-0123456789"
	env := fileEnv(filepath.Join(t.TempDir(), "token_usage.json"))
	env["TOKENLEDGER_API_KEY"] = key
	s := startServer(t, env)
	r := cli(t, nil, "", benchArgs(s.url, "-n", "100")...)
	if r.code != 1 || !strings.Contains(r.stderr, "tokenledger: bench: the service refused the events: HTTP 401: Logging usage needs the API key") ||
		!strings.Contains(r.stderr, "(give --api-key or set TOKENLEDGER_API_KEY)") {
		t.Fatalf("without a key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, map[string]string{"TOKENLEDGER_API_KEY": key}, "", benchArgs(s.url, "-n", "100")...)
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, key) {
		t.Fatalf("with TOKENLEDGER_API_KEY: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, nil, "", benchArgs(s.url, "-n", "100", "--api-key", key, "--into-live-data")...)
	if r.code != 0 {
		t.Fatalf("with --api-key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestBenchStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token_usage.json")
	// By default bench runs on its own file beside the configured one and
	// deletes it: the ledger is left as it was, and nothing else is left.
	r := cli(t, fileEnv(path), "", "bench", "--store", "-n", "500", "-c", "4", "--batch", "5", "--resend", "0.1", "--quiet")
	if r.code != 0 || !strings.Contains(r.stdout, "verify      ok:") || !strings.Contains(r.stdout, "the file store at "+dir+"/.tokenledger-bench-") ||
		!strings.Contains(r.stdout, "bench's own, deleted afterwards") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "📊 Logged") {
		t.Errorf("per-event log lines in store mode:\n%s", r.stderr)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("bench left %d files in %s: %v", len(left), dir, left)
	}
	r = cli(t, fileEnv(path), "", "report", "--days", "1", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"totalRequests": 0,`) {
		t.Fatalf("report after bench --store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// --into-live-data writes into the configured file, and its events stay.
	r = cli(t, fileEnv(path), "", "bench", "--store", "--into-live-data", "-n", "50", "-c", "2", "--quiet")
	if r.code != 0 || !strings.Contains(r.stdout, "the file store at "+path+" (") {
		t.Fatalf("--into-live-data: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, fileEnv(path), "", "report", "--days", "1", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"totalRequests": 50,`) {
		t.Fatalf("report after --into-live-data: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestBenchRefusesALiveServer: a server that holds usage is not loaded
// (bench's events could never be taken out again) unless
// --into-live-data; the refusal changes nothing.
func TestBenchRefusesALiveServer(t *testing.T) {
	s := startServer(t, fileEnv(filepath.Join(t.TempDir(), "token_usage.json")))
	if status, body := call(t, "POST", s.url+"/api/tokens", `{"model":"gpt-4o","promptTokens":5}`); status != 200 {
		t.Fatalf("POST: %d %v", status, body)
	}
	r := cli(t, nil, "", benchArgs(s.url, "-n", "100")...)
	want := "tokenledger: bench: " + s.url + " already holds usage (1 request in its retention window), and bench's events would stay in it for good"
	if r.code != 2 || !strings.HasPrefix(strings.TrimSpace(r.stderr), want) || !strings.Contains(r.stderr, "give --into-live-data") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if _, body := call(t, "GET", s.url+"/api/tokens?action=stats", ""); body["stats"].(map[string]any)["totalRequests"] != 1.0 {
		t.Errorf("the refused run stored events: %v", body)
	}
	if r := cli(t, nil, "", benchArgs(s.url, "-n", "100", "--into-live-data")...); r.code != 0 {
		t.Errorf("--into-live-data: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Something that is not a tokenledger cannot be told empty.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	r = cli(t, nil, "", benchArgs(srv.URL, "-n", "10")...)
	if r.code != 1 || !strings.Contains(r.stderr, "bench: cannot tell whether "+srv.URL+" already holds usage") {
		t.Errorf("not a tokenledger: exit %d\n%s", r.code, r.stderr)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "bench: give --url URL (a running tokenledger) or --store (the configured store); see tokenledger bench --help"},
		{[]string{"bench", "--url", "http://x", "--store"}, "bench: give --url or --store, not both"},
		{[]string{"bench", "--url", "ftp://x"}, `bench: --url must be an http:// or https:// URL of a tokenledger, such as http://127.0.0.1:8080, without credentials or query, not "ftp://x"`},
		{[]string{"bench", "--url", "http://x", "-c", "0"}, "bench: -c must be a whole number of clients from 1 to 10000, not 0"},
		{[]string{"bench", "--url", "http://x", "-n", "5", "-d", "1s"}, "bench: give -n (a number of events) or -d (a duration), not both"},
		{[]string{"bench", "--url", "http://x", "-n", "0"}, "bench: -n must be a positive number of events, not 0"},
		{[]string{"bench", "--url", "http://x", "-d", "-1s"}, "bench: -d must be a positive duration such as 10s, not -1s"},
		{[]string{"bench", "--url", "http://x", "--batch", "1001"}, "bench: --batch must be from 1 to 1000 events per request, not 1001"},
		{[]string{"bench", "--url", "http://x", "--resend", "1"}, "bench: --resend must be a share from 0 to below 1, such as 0.05, not 1"},
		{[]string{"bench", "--url", "http://x", "--models", "0"}, "bench: --models must be from 1 to 10000, not 0"},
		{[]string{"bench", "--url", "http://x", "--timeout", "0s"}, "bench: --timeout must be a positive duration such as 10s, not 0s"},
		{[]string{"bench", "--url", "http://x", "-c", "x"}, `bench: invalid value "x" for flag -c: must be a whole number written with the digits 0-9 only, such as 1500 (see tokenledger bench --help)`},
		{[]string{"bench", "--url", "http://x", "extra"}, `bench: unexpected argument "extra" (see tokenledger bench --help)`},
	} {
		r := cli(t, memoryEnv, "", tc.args...)
		if r.code != 2 || r.stderr != "tokenledger: "+tc.want+"\n" {
			t.Errorf("%v: exit %d, stderr %q\nwant %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	r := cli(t, memoryEnv, "", "bench", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: tokenledger bench --url URL") || !strings.Contains(r.stdout, "-resend") {
		t.Errorf("--help: exit %d\n%s", r.code, r.stdout)
	}
}

func TestServePprof(t *testing.T) {
	r := cli(t, memoryEnv, "", "serve", "--addr", "127.0.0.1:0", "--pprof", "0.0.0.0:6060")
	if r.code != 2 || !strings.Contains(r.stderr, "serve: --pprof must be a loopback host:port such as 127.0.0.1:6060") {
		t.Fatalf("exit %d, %s", r.code, r.stderr)
	}
	s := startServer(t, memoryEnv, "--pprof", "127.0.0.1:0")
	line := s.stderr.String()
	_, after, ok := strings.Cut(line, "🔬 Go profiler on ")
	if !ok {
		t.Fatalf("no profiler line:\n%s", line)
	}
	url, _, _ := strings.Cut(after, " ")
	resp, err := http.Get(url + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("%s: %d\n%.300s", url, resp.StatusCode, body)
	}
	// Not on the API's address.
	if status, _ := call(t, "GET", s.url+"/debug/pprof/", ""); status != 404 {
		t.Errorf("the API serves /debug/pprof/: %d", status)
	}
}
