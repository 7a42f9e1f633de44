package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// redisEnv is the environment of a tokenledger on the Redis at srv, with
// its own local file (and spool) in dir.
func redisEnv(srv *redistest.Instance, prefix, dir string) map[string]string {
	return map[string]string{
		"REDIS_URL":              srv.URL(),
		"TOKENLEDGER_KEY_PREFIX": prefix,
		"TOKENLEDGER_FILE":       filepath.Join(dir, "token_usage.json"),
	}
}

// TestMultiInstanceExact runs four serve processes on one Redis (each with
// its own file and spool, one key prefix) and has 32 clients send 8,000
// events spread over four days across them, re-sending 5 % with the same id
// to another instance. Every total, day, model, user and unique count is
// exact, every instance answers the same, and so does `report --json`.
func TestMultiInstanceExact(t *testing.T) {
	srv := redistest.Server(t)
	const instances, clients, days = 4, 32, 4
	var servers []*server
	for i := range instances {
		servers = append(servers, spawnServe(t, fmt.Sprintf("tokenledger-%d", i), redisEnv(srv, "multi", t.TempDir())))
	}
	for _, s := range servers {
		s.ready(t)
	}

	events := genEvents("mi", 8000, days, 1)
	// Every 20th event (5 %) is sent again, with its id, to the next
	// instance once the first send was answered.
	resend := map[string]bool{}
	for i := 0; i < len(events); i += 20 {
		resend[events[i].ID] = true
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    int
		resent   int
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	for c := range clients {
		var mine []event
		for i := c; i < len(events); i += clients {
			mine = append(mine, events[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req, b := range batches(mine, 4, uint64(c)) {
				first := (c + req) % instances
				status, a, err := post(context.Background(), servers[first].url, b)
				if err != nil || status != 200 || a.Accepted != len(b) || a.Duplicates != 0 || a.Degraded {
					fail("batch of %d new events to instance %d: %d %+v %v", len(b), first, status, a, err)
					continue
				}
				var again []event
				for _, e := range b {
					if resend[e.ID] {
						again = append(again, e)
					}
				}
				mu.Lock()
				acked += len(b)
				mu.Unlock()
				if len(again) == 0 {
					continue
				}
				second := (first + 1) % instances
				status, a, err = post(context.Background(), servers[second].url, again)
				if err != nil || status != 200 || a.Accepted != 0 || a.Duplicates != len(again) || a.Degraded {
					fail("re-sending %d counted events to instance %d: %d %+v %v (want all duplicates)", len(again), second, status, a, err)
					continue
				}
				mu.Lock()
				resent += len(again)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d events acknowledged; failures:\n%v", acked, failures)
	}
	if acked != len(events) || resent != len(resend) {
		t.Fatalf("acknowledged %d of %d events, re-sent %d of %d", acked, len(events), resent, len(resend))
	}

	want := newLedger(events)
	const window = 7
	first := read(t, servers[0].url, window)
	want.check(t, first)
	for _, s := range servers[1:] {
		if got := read(t, s.url, window); got.Raw != first.Raw {
			t.Errorf("%s answers differently from %s:\n%v\n%v", s.name, servers[0].name, got.Raw, first.Raw)
		}
	}

	// The CLI reads the same database the same way.
	out := runCLI(t, redisEnv(srv, "multi", t.TempDir()), "report", "--json", "--days", fmt.Sprint(window))
	var rep struct {
		TodayUsage any `json:"todayUsage"`
		History    any `json:"history"`
		Stats      any `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report --json: %v\n%s", err, out)
	}
	var all struct {
		TodayUsage any `json:"todayUsage"`
		History    any `json:"history"`
		Stats      any `json:"stats"`
	}
	if err := json.Unmarshal([]byte(first.Raw[0]), &all); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep, all) {
		t.Errorf("report --json differs from action=all:\n%s\n%s", out, first.Raw[0])
	}
}

// TestNoSpoolDatabaseDown opens the app without the spool (as the one-shot
// commands do) on a Redis that is then hung (SIGSTOP) and stopped (SIGKILL):
// POST /api/tokens answers a clear 503 within a generous bound of the 500 ms
// database timeout, and retrying the same ids after the database is back
// counts each event exactly once, whatever the failed attempt left behind.
func TestNoSpoolDatabaseDown(t *testing.T) {
	// AOF with fsync on every write, so that the data survives the SIGKILL.
	srv := redistest.Server(t, "--appendonly", "yes", "--appendfsync", "always")
	env := redisEnv(srv, "nospool", t.TempDir())
	env["TOKENLEDGER_DB_TIMEOUT"] = "500ms"
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	hs := httptest.NewServer(a.Handler())
	defer hs.Close()

	const bound = 10 * time.Second // liveness, not speed: 20 × the timeout
	all := genEvents("ns", 600, 3, 2)
	before, hung, stopped := all[:200], all[200:400], all[400:]
	if got := mustPost(t, hs.URL, before); got.Accepted != len(before) || got.Degraded {
		t.Fatalf("with Redis up: %+v", got)
	}

	refused := func(what string, evs []event) {
		t.Helper()
		var slowest time.Duration
		defer func() { t.Logf("%s: the slowest 503 took %s", what, slowest) }()
		for _, b := range batches(evs, 50, 3) {
			start := time.Now()
			status, ans, err := post(context.Background(), hs.URL, b)
			took := time.Since(start)
			slowest = max(slowest, took)
			if err != nil || status != 503 || ans.Error != "Storage is unavailable right now; try again later" {
				t.Fatalf("%s: POST answered %d %+v %v, want 503 with the unavailable sentence", what, status, ans, err)
			}
			if took > bound {
				t.Errorf("%s: the 503 took %s (timeout 500ms, bound %s)", what, took, bound)
			}
		}
		// Reads fail the same way.
		if status, body := get(t, hs.URL+"/api/tokens?action=stats"); status != 503 {
			t.Errorf("%s: GET stats answered %d %s, want 503", what, status, body)
		}
	}

	srv.Pause(t)
	refused("Redis hung", hung)
	// The commands sent to the hung server run when it resumes: some of the
	// refused events may be counted now. Retrying counts each once.
	srv.Resume(t)
	for _, b := range batches(hung, 50, 3) {
		mustPost(t, hs.URL, b)
	}

	srv.Kill(t)
	refused("Redis stopped", stopped)
	srv.Restart(t)
	var accepted int
	for _, b := range batches(stopped, 50, 3) {
		accepted += mustPost(t, hs.URL, b).Accepted
	}
	if accepted != len(stopped) {
		t.Errorf("after a refused write to a stopped Redis, the retry accepted %d of %d events (want all: nothing reached it)", accepted, len(stopped))
	}

	newLedger(all).check(t, read(t, hs.URL, 7))
}
