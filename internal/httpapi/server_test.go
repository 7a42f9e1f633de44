package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/buildinfo"
	"github.com/tokenledger/tokenledger/internal/migrate"
	"github.com/tokenledger/tokenledger/internal/testkit"
	"github.com/tokenledger/tokenledger/store/fallback"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// now is the fixed clock of every test: noon UTC, 2026-11-27.
var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const adminKey = "0123456789abcdef-admin"

// fixture is a server over a memstore with a fixed clock.
type fixture struct {
	t     *testing.T
	store *memstore.Store
	svc   *tokenledger.Service
	h     http.Handler
	logs  *testkit.SyncBuffer
}

func newFixture(t *testing.T, configure ...func(*Deps)) *fixture {
	t.Helper()
	clock := func() time.Time { return now }
	st := memstore.New(clock, 90)
	t.Cleanup(func() { _ = st.Close() })
	return newFixtureOn(t, st, configure...)
}

func newFixtureOn(t *testing.T, st tokenledger.Store, configure ...func(*Deps)) *fixture {
	t.Helper()
	clock := func() time.Time { return now }
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := Deps{Logger: log, AdminKey: adminKey}
	for _, c := range configure {
		c(&d)
	}
	cfg := tokenledger.Config{Store: st, Now: clock, RetentionDays: 90, Logger: log}
	if d.Prices != nil {
		cfg.Prices = d.Prices
	}
	svc, err := tokenledger.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Service = svc
	f := &fixture{t: t, svc: svc, h: NewServer(d), logs: logs}
	if m, ok := st.(*memstore.Store); ok {
		f.store = m
	}
	return f
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (f *fixture) do(method, target, contentType, body string, header ...string) answer {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return f.serve(req)
}

func (f *fixture) serve(req *http.Request) answer {
	f.t.Helper()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if req.Method != http.MethodHead {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			f.t.Errorf("%s %s: Content-Type = %q, want JSON", req.Method, req.URL, ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
			f.t.Fatalf("%s %s: body is not a JSON object: %v\n%s", req.Method, req.URL, err, a.raw)
		}
	}
	return a
}

func (f *fixture) post(body string) answer {
	f.t.Helper()
	return f.do("POST", "/api/tokens", "application/json", body)
}

func (f *fixture) get(query string) answer {
	f.t.Helper()
	return f.do("GET", "/api/tokens"+query, "", "")
}

// state is everything the store holds, for before/after comparisons.
func (f *fixture) state() string {
	f.t.Helper()
	days, err := f.store.Days(context.Background(), tokenledger.DayQuery{From: "2000-01-01", To: "2100-01-01", Users: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return fmt.Sprintf("%d events %+v", f.store.Events(), days)
}

func (a answer) wantStatus(t *testing.T, want int) {
	t.Helper()
	if a.status != want {
		t.Fatalf("status = %d, want %d; body %s", a.status, want, a.raw)
	}
}

// jsonOf re-encodes v, to compare parts of answers as JSON text.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPostForms(t *testing.T) {
	f := newFixture(t)
	single := `{"id":"a1","model":"gpt-4o","promptTokens":100,"completionTokens":50,"userId":"u1","sessionId":"s1","costUsd":0.0015}`
	a := f.post(single)
	a.wantStatus(t, 200)
	if got, want := jsonOf(t, a.body), `{"accepted":1,"costs":[{"costUsd":0.0015,"pricing":"client"}],"degraded":false,"duplicates":0,"ids":["a1"],"storageType":"file-system"}`; got != want {
		t.Errorf("single: %s, want %s", got, want)
	}

	a = f.post(`[{"id":"a1","model":"gpt-4o","promptTokens":100,"completionTokens":50,"userId":"u1","sessionId":"s1","costUsd":0.0015},
		{"model":"claude","tokensUsed":30,"tokenType":"prompt","userId":"u2"}]`)
	a.wantStatus(t, 200)
	if a.body["accepted"] != 1.0 || a.body["duplicates"] != 1.0 {
		t.Errorf("array: %s, want 1 accepted and 1 duplicate", a.raw)
	}
	ids := a.body["ids"].([]any)
	if len(ids) != 2 || ids[0] != "a1" || ids[1] == "" {
		t.Errorf("array ids = %v, want [a1 <assigned>]", ids)
	}

	a = f.post(`{"events":[{"id":"b1","model":"gpt-4o","promptTokens":1,"completionTokens":2,"timestamp":"2026-11-26T23:59:59Z"}]}`)
	a.wantStatus(t, 200)
	if a.body["accepted"] != 1.0 {
		t.Errorf("events object: %s", a.raw)
	}
	if got := f.store.Events(); got != 3 {
		t.Errorf("store holds %d events, want 3", got)
	}
	// The same id on another day is another event (ids are unique per UTC day).
	a = f.post(`{"id":"b1","model":"gpt-4o","promptTokens":1}`)
	if a.body["accepted"] != 1.0 {
		t.Errorf("b1 today: %s, want accepted", a.raw)
	}
	if !strings.Contains(f.logs.String(), "📊 Logged 150 tokens for model gpt-4o (File)") {
		t.Errorf("log lacks the Logged line:\n%s", f.logs.String())
	}
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON; charset=UTF-8"} {
		a = f.do("POST", "/api/tokens", ct, `{"model":"m"}`)
		a.wantStatus(t, 200)
	}
}

func TestGetActions(t *testing.T) {
	f := newFixture(t)
	// Nothing yet: today is null, history zero-filled, stats empty.
	a := f.get("")
	a.wantStatus(t, 200)
	if v, ok := a.body["todayUsage"]; !ok || v != nil {
		t.Errorf("empty today: todayUsage = %v (present %v), want null", v, ok)
	}
	f.post(`[{"id":"1","model":"gpt-4o","promptTokens":100,"completionTokens":50,"userId":"u1","sessionId":"s1","costUsd":0.001},
		{"id":"2","model":"claude","promptTokens":10,"completionTokens":5,"userId":"u2","sessionId":"s1"},
		{"id":"3","model":"claude","promptTokens":1000,"completionTokens":1,"userId":"u2","timestamp":"2026-11-25T08:00:00Z"}]`).wantStatus(t, 200)

	today := `{"cacheReadTokens":0,"cacheWriteTokens":0,"completionTokens":55,"costUsd":0.001,"date":"2026-11-27",` +
		`"models":{"claude":{"completionTokens":5,"costUsd":0,"pricing":{"client":0,"table":0,"unpriced":1},"promptTokens":10,"requestCount":1,"totalTokens":15},` +
		`"gpt-4o":{"completionTokens":50,"costUsd":0.001,"pricing":{"client":1,"table":0,"unpriced":0},"promptTokens":100,"requestCount":1,"totalTokens":150}},` +
		`"pricing":{"client":1,"table":0,"unpriced":1},"promptTokens":110,"reasoningTokens":0,"requestCount":2,"totalTokens":165,"uniqueSessions":1,"uniqueUsers":2}`
	stats := `{"avgTokensPerRequest":389,"daysTracked":2,"firstDate":"2026-11-25","lastDate":"2026-11-27",` +
		`"mostActiveDate":"2026-11-25","pricing":{"client":1,"table":0,"unpriced":2},"topModel":"claude","totalCostUsd":0.001,"totalRequests":3,"totalTokensAllTime":1166}`

	tests := []struct {
		query string
		want  map[string]string // member → its JSON
	}{
		{"", map[string]string{"todayUsage": today}},
		{"?action=today", map[string]string{"todayUsage": today}},
		{"?action=date&date=2026-11-27", map[string]string{"dateUsage": today}},
		{"?action=date&date=2026-11-26", map[string]string{"dateUsage": "null"}},
		{"?action=date&date=2030-01-01", map[string]string{"dateUsage": "null"}},
		{"?action=stats", map[string]string{"stats": stats}},
		{"?action=models&days=7", map[string]string{"models": `[{"completionTokens":6,"costUsd":0,"model":"claude","pricing":{"client":0,"table":0,"unpriced":2},"promptTokens":1010,"requestCount":2,"totalTokens":1016},` +
			`{"completionTokens":50,"costUsd":0.001,"model":"gpt-4o","pricing":{"client":1,"table":0,"unpriced":0},"promptTokens":100,"requestCount":1,"totalTokens":150}]`}},
		{"?action=models&days=1", map[string]string{"models": `[{"completionTokens":50,"costUsd":0.001,"model":"gpt-4o","pricing":{"client":1,"table":0,"unpriced":0},"promptTokens":100,"requestCount":1,"totalTokens":150},` +
			`{"completionTokens":5,"costUsd":0,"model":"claude","pricing":{"client":0,"table":0,"unpriced":1},"promptTokens":10,"requestCount":1,"totalTokens":15}]`}},
		{"?action=users", map[string]string{"users": `[{"completionTokens":6,"costUsd":0,"pricing":{"client":0,"table":0,"unpriced":2},"promptTokens":1010,"requestCount":2,"totalTokens":1016,"userId":"u2"},` +
			`{"completionTokens":50,"costUsd":0.001,"pricing":{"client":1,"table":0,"unpriced":0},"promptTokens":100,"requestCount":1,"totalTokens":150,"userId":"u1"}]`}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			a := f.get(tc.query)
			a.wantStatus(t, 200)
			for k, want := range tc.want {
				if got := jsonOf(t, a.body[k]); got != want {
					t.Errorf("%s =\n%s\nwant\n%s", k, got, want)
				}
			}
			checkEnvelope(t, a, len(tc.want))
		})
	}

	t.Run("history", func(t *testing.T) {
		for _, q := range []struct {
			query string
			n     int
		}{{"?action=history", 7}, {"?action=history&days=3", 3}, {"?action=history&days=91", 91}, {"?action=history&days=1", 1}} {
			a := f.get(q.query)
			a.wantStatus(t, 200)
			h := a.body["history"].([]any)
			if len(h) != q.n {
				t.Fatalf("%s: %d days, want %d", q.query, len(h), q.n)
			}
			last := h[len(h)-1].(map[string]any)
			if last["date"] != "2026-11-27" || last["totalTokens"] != 165.0 {
				t.Errorf("%s: last day = %v, want today with 165 tokens", q.query, last)
			}
			first := h[0].(map[string]any)
			if want := string(tokenledger.Date("2026-11-27").AddDays(1 - q.n)); first["date"] != want {
				t.Errorf("%s: first day = %v, want %s", q.query, first["date"], want)
			}
			checkEnvelope(t, a, 1)
		}
		h := f.get("?action=history&days=3").body["history"].([]any)
		if got := h[0].(map[string]any); got["date"] != "2026-11-25" || got["totalTokens"] != 1001.0 {
			t.Errorf("history[0] = %v, want 2026-11-25 with 1001 tokens", got)
		}
		if got := h[1].(map[string]any); got["date"] != "2026-11-26" || got["requestCount"] != 0.0 || jsonOf(t, got["models"]) != "{}" {
			t.Errorf("history[1] = %v, want a zero-filled 2026-11-26", got)
		}
	})

	t.Run("all", func(t *testing.T) {
		a := f.get("?action=all&days=3")
		a.wantStatus(t, 200)
		if got := jsonOf(t, a.body["todayUsage"]); got != today {
			t.Errorf("all todayUsage = %s", got)
		}
		if got := jsonOf(t, a.body["stats"]); got != stats {
			t.Errorf("all stats = %s", got)
		}
		if h := a.body["history"].([]any); len(h) != 3 {
			t.Errorf("all history has %d days, want 3", len(h))
		}
		checkEnvelope(t, a, 3)
	})
}

// checkEnvelope checks environment and timestamp, and that the answer has
// exactly members more members besides them.
func checkEnvelope(t *testing.T, a answer, members int) {
	t.Helper()
	if got := jsonOf(t, a.body["environment"]); got != `{"isVercel":false,"storageType":"file-system"}` {
		t.Errorf("environment = %s", got)
	}
	if got := a.body["timestamp"]; got != "2026-11-27T12:00:00.000Z" {
		t.Errorf("timestamp = %v", got)
	}
	if len(a.body) != members+2 {
		t.Errorf("answer has members %v, want %d besides environment and timestamp", keys(a.body), members)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestAPITest(t *testing.T) {
	t.Run("ok", func(t *testing.T) {
		f := newFixture(t, func(d *Deps) {
			d.Environment = Environment{IsVercel: true, VercelEnv: "preview", Region: "fra1"}
		})
		a := f.do("GET", "/api/test", "", "")
		a.wantStatus(t, 200)
		db := a.body["database"].(map[string]any)
		delete(db, "latencyMs")
		want := `{"database":{"cluster":false,"configured":false,"connected":true,"error":null,"kind":"memory"},` +
			`"environment":{"isVercel":true,"region":"fra1","storageType":"file-system","vercelEnv":"preview"},` +
			`"fallback":{"active":false,"pendingEvents":0},"migration":{"migrated":0,"ran":false,"skipped":0},` +
			`"resetEnabled":true,"status":"ok","storageType":"file-system","timestamp":"2026-11-27T12:00:00.000Z","version":"` + buildinfo.Version() + `"}`
		if got := jsonOf(t, a.body); got != want {
			t.Errorf("body =\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("failing database, secrets hidden", func(t *testing.T) {
		b := newBroken(t, fmt.Errorf("redis at redis://default:hunter2@db.example.com:6379 (token s3cr3t-token): %w", tokenledger.ErrUnavailable))
		b.database = true
		f := newFixtureOn(t, b, func(d *Deps) {
			d.Secrets = []string{"s3cr3t-token"}
			d.Migration = func() migrate.Status { return migrate.Status{Ran: true, Migrated: 120, Skipped: 3} }
		})
		a := f.do("GET", "/api/test", "", "")
		a.wantStatus(t, 503)
		if strings.Contains(a.raw, "hunter2") || strings.Contains(a.raw, "s3cr3t") {
			t.Errorf("answer shows a secret: %s", a.raw)
		}
		db := a.body["database"].(map[string]any)
		if db["connected"] != false || db["configured"] != true || db["kind"] != "redis" {
			t.Errorf("database = %v", db)
		}
		if want := "redis at redis://[redacted]@db.example.com:6379 (token [redacted]): storage unavailable"; db["error"] != want {
			t.Errorf("database.error = %q, want %q", db["error"], want)
		}
		if a.body["status"] != "error" || a.body["storageType"] != "database" {
			t.Errorf("status %v storageType %v", a.body["status"], a.body["storageType"])
		}
		if got := jsonOf(t, a.body["migration"]); got != `{"migrated":120,"ran":true,"skipped":3}` {
			t.Errorf("migration = %s", got)
		}
	})
	t.Run("fallback active", func(t *testing.T) {
		b := newBroken(t, nil)
		b.database = true
		b.fallback = &fallback.Status{Active: true, PendingEvents: 12}
		f := newFixtureOn(t, fallbackStore{b})
		a := f.do("GET", "/api/test", "", "")
		a.wantStatus(t, 200)
		if got := jsonOf(t, a.body["fallback"]); got != `{"active":true,"pendingEvents":12}` {
			t.Errorf("fallback = %s", got)
		}
		if a.body["status"] != "degraded" {
			t.Errorf("status = %v, want degraded", a.body["status"])
		}
		// POST reports storageType database for a database store.
		if got := f.post(`{"model":"m"}`).body["storageType"]; got != "database" {
			t.Errorf("POST storageType = %v", got)
		}
	})
}

func TestHealth(t *testing.T) {
	f := newFixture(t)
	f.do("GET", "/healthz", "", "").wantStatus(t, 200)
	f.do("HEAD", "/healthz", "", "").wantStatus(t, 200)
	a := f.do("GET", "/readyz", "", "")
	a.wantStatus(t, 200)
	if a.body["status"] != "ready" {
		t.Errorf("readyz = %s", a.raw)
	}

	b := newBroken(t, fmt.Errorf("dial: %w", tokenledger.ErrUnavailable))
	g := newFixtureOn(t, b)
	g.do("GET", "/healthz", "", "").wantStatus(t, 200)
	a = g.do("GET", "/readyz", "", "")
	a.wantStatus(t, 503)
	if a.body["error"] != "Storage is not reachable; the server is not ready" {
		t.Errorf("readyz error = %q", a.body["error"])
	}
	if a.header.Get("Cache-Control") != "no-store" || a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers = %v", a.header)
	}
}

func TestBuildTestReportSharedShape(t *testing.T) {
	m := memstore.New(nil, 0)
	defer m.Close()
	svc, err := tokenledger.NewService(tokenledger.Config{Store: m, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	d := Deps{Service: svc}
	rep := BuildTestReport(context.Background(), d)
	rep.Database.LatencyMs = 0
	rec := httptest.NewRecorder()
	NewServer(d).ServeHTTP(rec, httptest.NewRequest("GET", "/api/test", nil))
	var fromHTTP TestReport
	if err := json.Unmarshal(rec.Body.Bytes(), &fromHTTP); err != nil {
		t.Fatal(err)
	}
	fromHTTP.Database.LatencyMs = 0
	if !reflect.DeepEqual(rep, fromHTTP) {
		t.Errorf("BuildTestReport = %+v\nGET /api/test = %+v", rep, fromHTTP)
	}
	if !rep.OK() {
		t.Error("OK() = false for a working store")
	}
}

func TestConcurrentPosts(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				req := httptest.NewRequest("POST", "/api/tokens", strings.NewReader(fmt.Sprintf(`{"id":"w%d-%d","model":"m","promptTokens":2}`, w, i%20)))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				f.h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					t.Errorf("status %d: %s", rec.Code, rec.Body)
				}
			}
		}()
	}
	wg.Wait()
	a := f.get("?action=stats")
	st := a.body["stats"].(map[string]any)
	if st["totalRequests"] != 320.0 || st["totalTokensAllTime"] != 640.0 {
		t.Errorf("stats = %v, want 320 requests and 640 tokens (16 writers × 20 distinct ids)", st)
	}
}
