package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/tokenledger/tokenledger/store/storetest"
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

func TestErrors(t *testing.T) {
	bigBody := `{"model":"m","promptTokens":1}` + strings.Repeat(" ", MaxBodyBytes)
	var batch strings.Builder
	batch.WriteString("[")
	for i := range tokenledger.MaxBatch + 1 {
		if i > 0 {
			batch.WriteString(",")
		}
		fmt.Fprintf(&batch, `{"model":"m","promptTokens":%d}`, i)
	}
	batch.WriteString("]")

	tests := []struct {
		name, method, target, ct, body string
		status                         int
		msg                            string
		field                          string
		index                          int // -1: no index member
	}{
		{"unknown field", "POST", "/api/tokens", "application/json", `{"model":"m","promtTokens":5}`,
			400, "promtTokens is not a known field; did you mean promptTokens? (see docs/api.md)", "promtTokens", -1},
		{"negative tokens", "POST", "/api/tokens", "application/json", `{"model":"m","promptTokens":-1}`,
			400, "promptTokens must be an integer from 0 to 1099511627776", "promptTokens", -1},
		{"huge tokens", "POST", "/api/tokens", "application/json", `{"model":"m","completionTokens":1099511627777}`,
			400, "completionTokens must be an integer from 0 to 1099511627776", "completionTokens", -1},
		{"fractional tokens", "POST", "/api/tokens", "application/json", `{"model":"m","promptTokens":1.5}`,
			400, "promptTokens must be an integer from 0 to 1099511627776", "promptTokens", -1},
		{"missing model", "POST", "/api/tokens", "application/json", `{"promptTokens":1}`,
			400, "model is required", "model", -1},
		{"bad event in a batch stores nothing", "POST", "/api/tokens", "application/json", `[{"model":"ok","promptTokens":1},{"promptTokens":1}]`,
			400, "event 1: model is required", "model", 1},
		{"future timestamp", "POST", "/api/tokens", "application/json", `[{"model":"ok"},{"model":"m","timestamp":"2026-11-27T12:06:00Z"}]`,
			400, "event 1: timestamp must not be more than 5 minutes in the future", "timestamp", 1},
		{"expired timestamp", "POST", "/api/tokens", "application/json", `{"model":"m","timestamp":"2026-08-28T23:59:59Z"}`,
			400, "event 0: timestamp is older than the retention window (90 days, oldest day kept is 2026-08-29)", "timestamp", 0},
		{"lone surrogate", "POST", "/api/tokens", "application/json", `[{"model":"m","userId":"\ud800"},{"model":"m","userId":"\udfff"}]`,
			400, `event 0: userId holds "\ud800", a lone UTF-16 surrogate, which is not a character`, "userId", 0},
		{"broken JSON", "POST", "/api/tokens", "application/json", `{"model":`,
			400, "the body is not valid JSON (it ends too early)", "", -1},
		{"empty body", "POST", "/api/tokens", "application/json", ``,
			400, `the body is empty; send one event, an array of events or {"events": [...]}`, "", -1},
		{"batch over 1000", "POST", "/api/tokens", "application/json", batch.String(),
			400, "a batch may hold at most 1000 events", "", -1},
		{"oversized body", "POST", "/api/tokens", "application/json", bigBody,
			413, "The body is larger than 1 MiB (1048576 bytes); send fewer events per request", "", -1},
		{"wrong content type", "POST", "/api/tokens", "text/plain", `{"model":"m"}`,
			415, "Content-Type must be application/json, not text/plain", "", -1},
		{"form content type", "POST", "/api/tokens", "application/x-www-form-urlencoded", `{"model":"m"}`,
			415, "Content-Type must be application/json, not application/x-www-form-urlencoded", "", -1},
		{"no content type", "POST", "/api/tokens", "", `{"model":"m"}`,
			415, "Content-Type must be application/json", "", -1},
		{"other charset", "POST", "/api/tokens", "application/json; charset=latin1", `{"model":"m"}`,
			415, "Content-Type must be application/json with charset utf-8 (or no charset)", "", -1},
		{"unknown action", "GET", "/api/tokens?action=week", "", "",
			400, "Invalid action. Valid actions: today, date, history, stats, all, models, users, range", "action", -1},
		{"empty action", "GET", "/api/tokens?action=", "", "",
			400, "Invalid action. Valid actions: today, date, history, stats, all, models, users, range", "action", -1},
		{"missing date", "GET", "/api/tokens?action=date", "", "",
			400, "Date parameter required for date action", "date", -1},
		{"no such month", "GET", "/api/tokens?action=date&date=2026-13-01", "", "",
			400, `date 2026-13-01 is not a real date: there is no month 13`, "date", -1},
		{"no such day", "GET", "/api/tokens?action=date&date=2026-02-30", "", "",
			400, `date 2026-02-30 is not a real date: February 2026 has 28 days`, "date", -1},
		{"bad date format", "GET", "/api/tokens?action=date&date=27.11.2026", "", "",
			400, `date must be a YYYY-MM-DD date, not "27.11.2026"`, "date", -1},
		{"empty date", "GET", "/api/tokens?action=date&date=", "", "",
			400, `date must be a YYYY-MM-DD date, not ""`, "date", -1},
		{"date with another action", "GET", "/api/tokens?action=today&date=2026-11-27", "", "",
			400, "date is not a parameter of action today (only of action date)", "date", -1},
		{"days not a number", "GET", "/api/tokens?action=history&days=abc", "", "",
			400, `days must be a whole number from 1 to 91, not "abc"`, "days", -1},
		{"days zero", "GET", "/api/tokens?action=history&days=0", "", "",
			400, `days must be a whole number from 1 to 91, not "0"`, "days", -1},
		{"days negative", "GET", "/api/tokens?action=all&days=-3", "", "",
			400, `days must be a whole number from 1 to 91, not "-3"`, "days", -1},
		{"days beyond retention", "GET", "/api/tokens?action=models&days=92", "", "",
			400, `days must be a whole number from 1 to 91, not "92"`, "days", -1},
		{"days fraction", "GET", "/api/tokens?action=users&days=7.5", "", "",
			400, `days must be a whole number from 1 to 91, not "7.5"`, "days", -1},
		{"days plus sign", "GET", "/api/tokens?action=history&days=%2B7", "", "",
			400, `days must be a whole number from 1 to 91, not "+7"`, "days", -1},
		{"days huge", "GET", "/api/tokens?action=history&days=99999999999999999999", "", "",
			400, `days must be a whole number from 1 to 91, not "99999999999999999999"`, "days", -1},
		{"days empty", "GET", "/api/tokens?action=history&days=", "", "",
			400, `days must be a whole number from 1 to 91, not ""`, "days", -1},
		{"days with stats", "GET", "/api/tokens?action=stats&days=30", "", "",
			400, "days is not a parameter of action stats (only of history, all, models, users and range)", "days", -1},
		{"action twice", "GET", "/api/tokens?action=today&action=stats", "", "",
			400, "action must be given at most once", "action", -1},
		{"unknown parameter", "GET", "/api/tokens?action=history&dyas=5", "", "",
			400, "dyas is not a parameter of GET /api/tokens, which takes action, date, days, since and until (see docs/api.md)", "dyas", -1},
		{"unknown parameter without action", "GET", "/api/tokens?from=2026-11-01", "", "",
			400, "from is not a parameter of GET /api/tokens, which takes action, date, days, since and until (see docs/api.md)", "from", -1},
		{"until after today", "GET", "/api/tokens?action=history&since=2026-12-01&until=2026-12-06", "", "",
			400, "until must not be after today (2026-11-27, UTC), not 2026-12-06", "until", -1},
		{"since after until", "GET", "/api/tokens?action=models&since=2026-11-20&until=2026-11-10", "", "",
			400, "since must not be after until, and 2026-11-20 is after 2026-11-10", "since", -1},
		{"since before the window", "GET", "/api/tokens?action=users&since=2026-08-28", "", "",
			400, "since must be within the retention window of 90 days, 2026-08-29 or later, not 2026-08-28", "since", -1},
		{"since not a date", "GET", "/api/tokens?action=all&since=yesterday", "", "",
			400, `since must be a YYYY-MM-DD date, not "yesterday"`, "since", -1},
		{"until not a real date", "GET", "/api/tokens?action=history&since=2026-11-01&until=2026-11-31", "", "",
			400, "until 2026-11-31 is not a real date: November 2026 has 30 days", "until", -1},
		{"until without since", "GET", "/api/tokens?action=history&until=2026-11-20", "", "",
			400, "until needs since, the first day of the range (YYYY-MM-DD)", "until", -1},
		{"days with since", "GET", "/api/tokens?action=history&days=3&since=2026-11-20", "", "",
			400, "days cannot be combined with since or until; give the last days, or the dates", "days", -1},
		{"since with stats", "GET", "/api/tokens?action=stats&since=2026-11-20", "", "",
			400, "since is not a parameter of action stats (only of history, all, models, users and range)", "since", -1},
		{"since twice", "GET", "/api/tokens?action=history&since=2026-11-20&since=2026-11-21", "", "",
			400, "since must be given at most once", "since", -1},
		{"wrong method", "PUT", "/api/tokens", "application/json", `{"model":"m"}`,
			405, "Method PUT is not allowed on /api/tokens; use GET, HEAD, POST, DELETE", "", -1},
		{"wrong method on test", "POST", "/api/test", "application/json", `{}`,
			405, "Method POST is not allowed on /api/test; use GET, HEAD", "", -1},
		{"unknown path", "GET", "/api/token", "", "",
			404, "No such endpoint: /api/token (see docs/api.md)", "", -1},
		{"trailing slash", "POST", "/api/tokens/", "application/json", `{"model":"m"}`,
			404, "No such endpoint: /api/tokens/ (see docs/api.md)", "", -1},
		// A path that is not in clean form is not redirected (ServeMux
		// would answer 307 text/html): it is an unknown path like any other.
		{"double slash", "GET", "//api/tokens", "", "",
			404, "No such endpoint: //api/tokens (see docs/api.md)", "", -1},
		{"double slash POST", "POST", "//api/tokens", "application/json", `{"model":"m"}`,
			404, "No such endpoint: //api/tokens (see docs/api.md)", "", -1},
		{"dot segment", "GET", "/api/./tokens", "", "",
			404, "No such endpoint: /api/./tokens (see docs/api.md)", "", -1},
		{"dot segment POST", "POST", "/api/./tokens", "application/json", `{"model":"m"}`,
			404, "No such endpoint: /api/./tokens (see docs/api.md)", "", -1},
		{"dot-dot segment POST", "POST", "/x/../api/tokens", "application/json", `{"model":"m"}`,
			404, "No such endpoint: /x/../api/tokens (see docs/api.md)", "", -1},
		{"dot-dot segment DELETE", "DELETE", "/x/../api/tokens", "", "",
			404, "No such endpoint: /x/../api/tokens (see docs/api.md)", "", -1},
		{"trailing dot", "GET", "/api/tokens/.", "", "",
			404, "No such endpoint: /api/tokens/. (see docs/api.md)", "", -1},
		{"inner double slash on test", "GET", "/api//test", "", "",
			404, "No such endpoint: /api//test (see docs/api.md)", "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.post(`{"id":"seed","model":"seed","promptTokens":7,"userId":"u"}`).wantStatus(t, 200)
			before := f.state()
			a := f.do(tc.method, tc.target, tc.ct, tc.body)
			a.wantStatus(t, tc.status)
			if a.body["error"] != tc.msg {
				t.Errorf("error =\n%q\nwant\n%q", a.body["error"], tc.msg)
			}
			if got, _ := a.body["field"].(string); got != tc.field {
				t.Errorf("field = %q, want %q", got, tc.field)
			}
			idx, hasIdx := a.body["index"]
			switch {
			case tc.index < 0 && hasIdx:
				t.Errorf("index = %v, want none", idx)
			case tc.index >= 0 && idx != float64(tc.index):
				t.Errorf("index = %v, want %d", idx, tc.index)
			}
			if wantMembers := 1 + boolInt(tc.field != "") + boolInt(tc.index >= 0); len(a.body) != wantMembers {
				t.Errorf("error body %s has extra members", a.raw)
			}
			if tc.status == 405 && a.header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
			if after := f.state(); after != before {
				t.Errorf("the store changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestOversizedChunkedBody(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	req := httptest.NewRequest("POST", "/api/tokens", strings.NewReader(`[`+strings.Repeat(`{"model":"m"},`, MaxBodyBytes/14)+`{"model":"m"}]`))
	req.ContentLength = -1 // as for a chunked upload: the limit must hold while reading
	req.Header.Set("Content-Type", "application/json")
	a := f.serve(req)
	a.wantStatus(t, 413)
	if f.state() != before {
		t.Error("the store changed")
	}
}

// TestContentEncodingMustBeIdentity: the server never decompresses a
// body, so a POST with any Content-Encoding other than identity is 415
// and stores nothing, whether the body really is compressed (which would
// otherwise be refused as "not valid UTF-8") or is plain JSON mislabelled
// (which would otherwise be stored).
func TestContentEncodingMustBeIdentity(t *testing.T) {
	const event = `{"model":"m","promptTokens":1}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(event))
	_ = zw.Close()

	refused := []struct {
		name, body string
		encodings  []string // one Content-Encoding header per element
		msg        string
	}{
		{"plain body labelled gzip", event, []string{"gzip"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not gzip"},
		{"gzip body", gz.String(), []string{"gzip"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not gzip"},
		{"deflate", event, []string{"deflate"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not deflate"},
		{"br in upper case", event, []string{"BR"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not BR"},
		{"identity then gzip", event, []string{"identity, gzip"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not identity, gzip"},
		{"gzip in a second header", event, []string{"identity", "gzip"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not identity, gzip"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.state()
			req := httptest.NewRequest("POST", "/api/tokens", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			for _, enc := range tc.encodings {
				req.Header.Add("Content-Encoding", enc)
			}
			a := f.serve(req)
			a.wantStatus(t, 415)
			if a.body["error"] != tc.msg || len(a.body) != 1 {
				t.Errorf("body %s, want {\"error\": %q}", a.raw, tc.msg)
			}
			if got := a.header.Get("Accept-Encoding"); got != "identity" {
				t.Errorf("Accept-Encoding = %q, want identity", got)
			}
			if f.state() != before {
				t.Error("the store changed")
			}
		})
	}

	for _, enc := range []string{"identity", "IDENTITY", " identity "} {
		f := newFixture(t)
		req := httptest.NewRequest("POST", "/api/tokens", strings.NewReader(event))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", enc)
		if a := f.serve(req); a.status != 200 {
			t.Errorf("Content-Encoding %q: %d %s, want 200", enc, a.status, a.raw)
		}
	}
}

func TestReset(t *testing.T) {
	seed := func(f *fixture) {
		f.post(`{"model":"m","promptTokens":5}`).wantStatus(t, 200)
	}
	t.Run("disabled without a key", func(t *testing.T) {
		f := newFixture(t, func(d *Deps) { d.AdminKey = "" })
		seed(f)
		before := f.state()
		a := f.do("DELETE", "/api/tokens", "", "", "Authorization", "Bearer ")
		a.wantStatus(t, 403)
		if want := "Reset is disabled: set TOKENLEDGER_ADMIN_KEY on the server and send it as Authorization: Bearer <key>"; a.body["error"] != want {
			t.Errorf("error = %q", a.body["error"])
		}
		if !strings.Contains(a.raw, "Bearer <key>") {
			t.Errorf("the answer escapes <key>: %s", a.raw)
		}
		if f.state() != before {
			t.Error("data changed")
		}
	})
	tests := []struct {
		name   string
		auth   string
		status int
		msg    string
	}{
		{"no header", "", 401, "Reset needs the admin key as Authorization: Bearer <TOKENLEDGER_ADMIN_KEY>"},
		{"basic auth", "Basic dXNlcjpwYXNz", 401, "Reset needs the admin key as Authorization: Bearer <TOKENLEDGER_ADMIN_KEY>"},
		{"empty bearer", "Bearer ", 401, "Reset needs the admin key as Authorization: Bearer <TOKENLEDGER_ADMIN_KEY>"},
		{"wrong key", "Bearer 0123456789abcdef-admim", 403, "The admin key is wrong; nothing was reset"},
		{"prefix of the key", "Bearer 0123456789abcdef", 403, "The admin key is wrong; nothing was reset"},
		{"key plus more", "Bearer " + adminKey + "x", 403, "The admin key is wrong; nothing was reset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			seed(f)
			before := f.state()
			a := f.do("DELETE", "/api/tokens", "", "", "Authorization", tc.auth)
			a.wantStatus(t, tc.status)
			if a.body["error"] != tc.msg {
				t.Errorf("error = %q, want %q", a.body["error"], tc.msg)
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if f.state() != before {
				t.Error("data changed")
			}
		})
	}
	t.Run("right key", func(t *testing.T) {
		f := newFixture(t)
		seed(f)
		a := f.do("DELETE", "/api/tokens", "", "", "Authorization", "bearer "+adminKey)
		a.wantStatus(t, 200)
		if got := jsonOf(t, a.body); got != `{"message":"All token usage data has been reset","timestamp":"2026-11-27T12:00:00.000Z"}` {
			t.Errorf("answer = %s", got)
		}
		if n := f.store.Events(); n != 0 {
			t.Errorf("%d events left after reset", n)
		}
	})
}

// brokenStore fails every call with err (or panics when panicking).
type brokenStore struct {
	tokenledger.Store
	err      error
	panics   bool
	database bool
	fallback *fallback.Status
}

func (b *brokenStore) fail() error {
	if b.panics {
		panic("boom")
	}
	return b.err
}

func (b *brokenStore) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	e := batch.Events()
	if err := b.fail(); err != nil {
		return tokenledger.AddResult{}, err
	}
	return b.Store.Add(ctx, storetest.Batch(e))
}

func (b *brokenStore) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.Store.Days(ctx, q)
}

func (b *brokenStore) Reset(ctx context.Context) error {
	if err := b.fail(); err != nil {
		return err
	}
	return b.Store.Reset(ctx)
}

func (b *brokenStore) Check(ctx context.Context) error {
	if err := b.fail(); err != nil {
		return err
	}
	return b.Store.Check(ctx)
}

func (b *brokenStore) Info() tokenledger.StoreInfo {
	if b.database {
		return tokenledger.StoreInfo{Kind: "redis", Database: true, Location: "db.example.com:6379"}
	}
	return tokenledger.StoreInfo{Kind: "file", Location: "x.json"}
}

// fallbackStore adds a spool status to brokenStore.
type fallbackStore struct{ *brokenStore }

func (f fallbackStore) FallbackStatus() fallback.Status { return *f.fallback }

func newBroken(t *testing.T, err error) *brokenStore {
	m := memstore.New(nil, 0)
	t.Cleanup(func() { _ = m.Close() })
	return &brokenStore{Store: m, err: err}
}

func TestStoreErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		panics bool
		status int
		msg    string
		log    string
	}{
		{"unavailable", fmt.Errorf("redis: dial db.example.com:6379: %w", tokenledger.ErrUnavailable), false, 503, msgUnavailable, "storage unavailable"},
		{"closed", tokenledger.ErrClosed, false, 503, msgUnavailable, "storage unavailable"},
		{"spooled events withheld", &tokenledger.UnavailableError{Msg: "The database is unreachable and 7 events wait in the local spool", Err: errors.New("dial tcp 10.0.0.1:6379: i/o timeout")},
			false, 503, "The database is unreachable and 7 events wait in the local spool", "i/o timeout"},
		{"timeout", fmt.Errorf("read: %w", context.DeadlineExceeded), false, 503, msgUnavailable, "storage unavailable"},
		{"corrupt data", errors.New("decode day 2026-11-27: unexpected end of JSON input"), false, 500, msgInternal, "decode day 2026-11-27: unexpected end of JSON input"},
		{"panic", nil, true, 500, msgInternal, "handler panicked"},
		{"counter overflow", fmt.Errorf("redis 10.0.0.1:6379: add 2 events: %w", &tokenledger.CounterOverflowError{Date: "2026-11-27", Counter: "costUsd"}),
			false, 400, "counter costUsd of day 2026-11-27 would overflow (reach 2^62); nothing was stored", ""},
	}
	requests := []struct{ method, target, body string }{
		{"POST", "/api/tokens", `{"model":"m"}`},
		{"GET", "/api/tokens?action=all", ""},
		{"GET", "/api/tokens?action=users", ""},
		{"DELETE", "/api/tokens", ""},
	}
	for _, tc := range tests {
		for _, rq := range requests {
			t.Run(tc.name+" "+rq.method+" "+rq.target, func(t *testing.T) {
				b := newBroken(t, tc.err)
				b.panics = tc.panics
				f := newFixtureOn(t, b)
				a := f.do(rq.method, rq.target, "application/json", rq.body, "Authorization", "Bearer "+adminKey)
				a.wantStatus(t, tc.status)
				if a.body["error"] != tc.msg {
					t.Errorf("error = %q, want %q", a.body["error"], tc.msg)
				}
				if len(a.body) != 1 {
					t.Errorf("error body %s shows more than the sentence", a.raw)
				}
				if !strings.Contains(f.logs.String(), tc.log) {
					t.Errorf("log lacks %q:\n%s", tc.log, f.logs.String())
				}
			})
		}
	}
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
