package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/serverless"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// requireBrowserEnv turns a missing browser from a skip into a failure.
const requireBrowserEnv = "TOKENLEDGER_REQUIRE_BROWSER"

// browserPath finds Chromium (Debian's chromium, or Chrome), or skips t —
// fails it under TOKENLEDGER_REQUIRE_BROWSER=1.
func browserPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(requireBrowserEnv) == "1" {
		t.Fatalf("no chromium is installed, and %s=1 forbids skipping (scripts/test.sh installs it as root)", requireBrowserEnv)
	}
	t.Skipf("no chromium is installed (set %s=1 to make this a failure)", requireBrowserEnv)
	return ""
}

// site is a running tokenledger that the browser can open.
type site struct {
	url     string
	readKey string // sent by api() when set
	apiKey  string
	logs    *logBuffer // every line the server logged, at debug level; nil unless asked for
}

// logBuffer keeps log lines written from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// backend starts a tokenledger of one kind on a loopback port: "file"
// (serve on the local file), "redis" (serve on a real redis-server) or
// "vercel" (the Vercel functions over the KV REST front on a real
// redis-server, behind vercel.json's rewrites). env adds variables.
func backend(t testing.TB, kind string, env map[string]string) *site {
	t.Helper()
	return startBackend(t, kind, env, false)
}

// loggedBackend is backend "file" or "redis" with every log line of the
// server kept in site.logs, at debug level and not redacted.
func loggedBackend(t testing.TB, kind string, env map[string]string) *site {
	t.Helper()
	return startBackend(t, kind, env, true)
}

func startBackend(t testing.TB, kind string, env map[string]string, logged bool) *site {
	t.Helper()
	vars := map[string]string{"TOKENLEDGER_LOG_LEVEL": "error"}
	for k, v := range env {
		vars[k] = v
	}
	s := &site{readKey: vars["TOKENLEDGER_READ_KEY"], apiKey: vars["TOKENLEDGER_API_KEY"]}
	var h http.Handler
	switch kind {
	case "file", "redis":
		dir := t.TempDir()
		vars["TOKENLEDGER_FILE"] = filepath.Join(dir, "usage.json")
		vars["TOKENLEDGER_SPOOL_DIR"] = filepath.Join(dir, "spool")
		if kind == "redis" {
			vars["TOKENLEDGER_STORE"] = "redis"
			vars["REDIS_URL"] = redistest.Shared(t).URL()
			vars["TOKENLEDGER_KEY_PREFIX"] = redistest.Prefix()
		}
		cfg, err := config.Load(func(k string) string { return vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.DiscardHandler)
		if logged {
			s.logs = &logBuffer{}
			log = slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		a, err := app.Open(context.Background(), cfg, app.Options{Logger: log, Spool: kind == "redis"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		h = a.Handler()
	case "vercel":
		if logged {
			t.Fatal("loggedBackend serves file or redis")
		}
		front := kvresttest.Start(t, redistest.Shared(t).Addr(), kvresttest.Options{})
		vars["VERCEL"], vars["VERCEL_ENV"], vars["VERCEL_REGION"] = "1", "preview", "fra1"
		vars["TMPDIR"] = t.TempDir()
		vars["KV_REST_API_URL"], vars["KV_REST_API_TOKEN"] = front.URL(), front.Token()
		vars["TOKENLEDGER_KEY_PREFIX"] = redistest.Prefix()
		inst := &serverless.Instance{}
		t.Cleanup(func() { inst.Close() })
		h = vercelRouter(t, inst, func(k string) string { return vars[k] })
	default:
		t.Fatalf("unknown backend %q", kind)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// vercelRouter is what Vercel does in front of the functions: it applies
// vercel.json's rewrites (read from the repository's file), then runs the
// function named by the path: api/tokens, api/test or api/dashboard.
func vercelRouter(t testing.TB, inst *serverless.Instance, getenv func(string) string) http.Handler {
	t.Helper()
	raw, err := os.ReadFile("../../vercel.json")
	if err != nil {
		t.Fatal(err)
	}
	var vj struct {
		Rewrites []struct{ Source, Destination string }
	}
	if err := json.Unmarshal(raw, &vj); err != nil {
		t.Fatalf("vercel.json: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rw := range vj.Rewrites {
			if dest, ok := rewrite(rw.Source, rw.Destination, r.URL.Path); ok {
				path, query, _ := strings.Cut(dest, "?")
				r.URL.Path = path
				if query != "" {
					r.URL.RawQuery = query
				}
				break
			}
		}
		switch r.URL.Path {
		case "/api/tokens", "/api/test":
			inst.Serve(w, r, getenv)
		case "/api/dashboard":
			serverless.ServeDashboard(w, r)
		default:
			http.Error(w, "no such function", http.StatusNotFound)
		}
	})
}

// rewrite matches path against a vercel.json source with ":name"
// segments and fills them into destination.
func rewrite(source, destination, path string) (string, bool) {
	ss, ps := strings.Split(source, "/"), strings.Split(path, "/")
	if len(ss) != len(ps) {
		return "", false
	}
	for i, seg := range ss {
		if name, ok := strings.CutPrefix(seg, ":"); ok {
			destination = strings.ReplaceAll(destination, ":"+name, ps[i])
		} else if seg != ps[i] {
			return "", false
		}
	}
	return destination, true
}

// post logs events through POST /api/tokens, in batches of 1,000.
func (s *site) post(t testing.TB, events []map[string]any) {
	t.Helper()
	for len(events) > 0 {
		n := min(1000, len(events))
		body, _ := json.Marshal(events[:n])
		events = events[n:]
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/tokens", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if s.apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+s.apiKey)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST /api/tokens: %d %s", res.StatusCode, b)
		}
	}
}

// rangeAnswer is GET /api/tokens?action=range, as the page reads it.
type rangeAnswer struct {
	TodayUsage *day `json:"todayUsage"`
	History    []day
	Models     []row
	Users      []row
	Stats      struct {
		TotalTokensAllTime, TotalRequests, AvgTokensPerRequest int64
		DaysTracked                                            int
		MostActiveDate, TopModel                               *string
		TotalCostUsd                                           json.Number
	}
}

type day struct {
	Date                                               string
	PromptTokens, CompletionTokens, TotalTokens        int64
	CacheReadTokens, CacheWriteTokens, ReasoningTokens int64
	RequestCount, UniqueUsers, UniqueSessions          int64
	CostUsd                                            json.Number
}

type row struct {
	Model, UserID                                             string
	PromptTokens, CompletionTokens, TotalTokens, RequestCount int64
	CostUsd                                                   json.Number
	Pricing                                                   struct{ Client, Table, Unpriced int64 }
}

// api reads the range report of n days from the API.
func (s *site) api(t testing.TB, n int) rangeAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/tokens?action=range&days=%d", s.url, n), nil)
	if s.readKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.readKey)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var a rangeAnswer
	dec := json.NewDecoder(res.Body)
	dec.UseNumber()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET action=range: %d", res.StatusCode)
	}
	if err := dec.Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

// sample is the known data of the tests, relative to today (UTC): 40 days
// back, a gap of days without usage, cached and reasoning tokens, priced,
// client-priced and unknown models, and user ids a CSV must quote.
func sample(now time.Time) []map[string]any {
	models := []string{"gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro", "my-local-llama"}
	users := []string{"alice", "bob", `carol, "the admin"`, "dave;semi", "erin"}
	var out []map[string]any
	for back := 0; back < 40; back++ {
		if back >= 10 && back < 13 {
			continue // three days without usage, drawn as zero
		}
		for i := 0; i < 3+back%4; i++ {
			e := map[string]any{
				"id":               fmt.Sprintf("sample-%d-%d", back, i),
				"timestamp":        now.AddDate(0, 0, -back).Format(time.RFC3339),
				"model":            models[(back+i)%len(models)],
				"userId":           users[(back*3+i)%len(users)],
				"sessionId":        fmt.Sprintf("s%d", (back+i)%7),
				"promptTokens":     1000 + 37*back + 11*i,
				"cacheReadTokens":  (200 + 13*back) * (i % 2),
				"completionTokens": 300 + 7*i + back,
			}
			if i == 2 {
				e["costUsd"] = 0.012345 + float64(back)/1000
			}
			out = append(out, e)
		}
	}
	return out
}
