package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/buildinfo"
)

// fileEnv is the environment of a server on the file store at path.
func fileEnv(path string) map[string]string {
	return map[string]string{"TOKENLEDGER_STORE": "file", "TOKENLEDGER_FILE": path}
}

// readAll reads every action and /api/test, with every "timestamp" and
// the check's latency removed, as JSON text per request.
func readAll(t *testing.T, url string) map[string]string {
	t.Helper()
	today := tokenledger.DateOf(time.Now())
	out := map[string]string{}
	for _, q := range []string{
		"/api/tokens", "/api/tokens?action=today", "/api/tokens?action=date&date=" + string(today),
		"/api/tokens?action=date&date=" + string(today.AddDays(-1)),
		"/api/tokens?action=history", "/api/tokens?action=history&days=30", "/api/tokens?action=stats",
		"/api/tokens?action=all", "/api/tokens?action=all&days=3", "/api/tokens?action=models&days=7",
		"/api/tokens?action=users&days=91", "/api/test",
	} {
		status, body := call(t, "GET", url+q, "")
		if status != 200 {
			t.Fatalf("GET %s: %d %v", q, status, body)
		}
		delete(body, "timestamp")
		if db, ok := body["database"].(map[string]any); ok {
			delete(db, "latencyMs")
		}
		b, _ := json.Marshal(body)
		out[q] = string(b)
	}
	return out
}

func TestServeEndToEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "token_usage.json")
	env := fileEnv(path)
	s := startServer(t, env)
	start := tokenledger.DateOf(time.Now())

	yesterday := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)
	posts := []struct {
		body              string
		accepted, dupes   float64
		wantIDs, givenIDs int
	}{
		{`{"id":"one","model":"gpt-4o","promptTokens":1200,"completionTokens":300,"userId":"ada","sessionId":"s1","costUsd":0.0045}`, 1, 0, 1, 1},
		{`[{"id":"two","model":"claude","promptTokens":900,"completionTokens":120,"userId":"bob","cacheReadTokens":800},
		   {"model":"gpt-4o","tokensUsed":50,"tokenType":"completion","userId":"ada","sessionId":"s2"},
		   {"id":"one","model":"gpt-4o","promptTokens":1200,"completionTokens":300}]`, 2, 1, 3, 2},
		{`{"events":[{"id":"old","model":"claude","promptTokens":10,"completionTokens":1,"timestamp":"` + yesterday + `"},
		   {"id":"two","model":"claude","promptTokens":900,"completionTokens":120}]}`, 1, 1, 2, 2},
	}
	for i, p := range posts {
		status, body := call(t, "POST", s.url+"/api/tokens", p.body)
		if status != 200 || body["accepted"] != p.accepted || body["duplicates"] != p.dupes ||
			len(body["ids"].([]any)) != p.wantIDs || body["storageType"] != "file-system" || body["degraded"] != false {
			t.Fatalf("POST %d: %d %v", i, status, body)
		}
	}
	// A bad request on the live server changes nothing either.
	if status, body := call(t, "POST", s.url+"/api/tokens", `[{"model":"x"},{"model":"y","promptTokens":-1}]`); status != 400 || body["index"] != 1.0 {
		t.Fatalf("bad batch: %d %v", status, body)
	}

	first := readAll(t, s.url)
	var all struct {
		TodayUsage *tokenledger.Day `json:"todayUsage"`
		Stats      tokenledger.Stats
	}
	if err := json.Unmarshal([]byte(first["/api/tokens?action=all"]), &all); err != nil {
		t.Fatal(err)
	}
	if all.Stats.TotalRequests != 4 || all.Stats.TotalTokensAllTime != 1500+1020+50+11 {
		t.Errorf("stats = %+v, want 4 requests and 2581 tokens", all.Stats)
	}
	if all.TodayUsage == nil || all.TodayUsage.UniqueUsers != 2 || all.TodayUsage.UniqueSessions != 2 || all.TodayUsage.CacheReadTokens != 800 {
		t.Errorf("todayUsage = %+v", all.TodayUsage)
	}
	// 0.0045 sent by the client, plus the table's price of the 50
	// completion tokens of gpt-4o sent without a cost: 50 × $0.00001.
	// "claude" is no key of the table: unpriced.
	if all.Stats.TotalCost != 5_000_000 || all.Stats.Pricing != (tokenledger.PricingCounts{Client: 1, Table: 1, Unpriced: 2}) {
		t.Errorf("totalCostUsd = %v, pricing %+v, want 0.005 and 1 client, 1 table, 2 unpriced", all.Stats.TotalCost, all.Stats.Pricing)
	}

	s.stop(t)
	log := s.stderr.String()
	for _, want := range []string{
		"💾 Using the file store at " + path + " (TOKENLEDGER_STORE=file)",
		"🚀 tokenledger " + buildinfo.Version() + " listening on " + s.url,
		"📊 Logged 1500 tokens for model gpt-4o (File)",
		"tokenledger stopped",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	s2 := startServer(t, env)
	second := readAll(t, s2.url)
	if tokenledger.DateOf(time.Now()) != start {
		t.Skip("the UTC day changed during the test; today's answers differ by design")
	}
	for q, want := range first {
		if got := second[q]; got != want {
			t.Errorf("GET %s after restart:\n%s\nbefore:\n%s", q, got, want)
		}
	}
	s2.stop(t)
}

func TestLogAndReportOnFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.json")
	env := fileEnv(path)
	ts := time.Now().UTC().Add(-time.Minute)
	day := tokenledger.DateOf(ts)

	r := cli(t, env, "", "log", "--model", "gpt-4o", "--prompt", "1200", "--completion", "300", "--user", "ada",
		"--session", "s1", "--cost", "0.0045", "--id", "req-1", "--timestamp", ts.Format(time.RFC3339Nano))
	if r.code != 0 || r.stdout != "logged 1500 tokens for model gpt-4o, id req-1, cost $0.0045 (given)\n" {
		t.Fatalf("log: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" { // quiet without --verbose
		t.Errorf("log wrote on stderr:\n%s", r.stderr)
	}
	r = cli(t, fileEnv(filepath.Join(t.TempDir(), "verbose.json")), "", "log", "--verbose", "--model", "gpt-4o", "--prompt", "7")
	if r.code != 0 || !strings.Contains(r.stderr, "📊 Logged 7 tokens for model gpt-4o (File)") || !strings.Contains(r.stderr, "💾 Using the file store") {
		t.Errorf("log --verbose: exit %d, stderr lacks the store and Logged lines:\n%s", r.code, r.stderr)
	}
	r = cli(t, env, "", "log", "--model", "gpt-4o", "--prompt", "1200", "--id", "req-1", "--timestamp", ts.Format(time.RFC3339Nano))
	if r.code != 0 || r.stdout != fmt.Sprintf("duplicate: id req-1 was already counted on %s; nothing changed\n", day) {
		t.Fatalf("log again: exit %d stdout %q", r.code, r.stdout)
	}
	r = cli(t, env, "", "log", "--json", "--model", "claude-sonnet", "--completion", "20", "--id", "req-2", "--timestamp", ts.Format(time.RFC3339Nano))
	if r.code != 0 || r.stdout != `{"accepted":1,"costs":[{"costUsd":0,"pricing":"unpriced"}],"degraded":false,"duplicates":0,"ids":["req-2"],"storageType":"file-system"}`+"\n" {
		t.Fatalf("log --json: exit %d stdout %q", r.code, r.stdout)
	}
	r = cli(t, env, `[{"id":"b1","model":"claude-sonnet","promptTokens":5000,"timestamp":"`+ts.Format(time.RFC3339)+`"},{"id":"req-1","model":"x","timestamp":"`+ts.Format(time.RFC3339Nano)+`"}]`, "log", "--stdin")
	if r.code != 0 || r.stdout != "logged 1 event, 1 duplicate\n" {
		t.Fatalf("log --stdin: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
	// A bad event from stdin is refused whole.
	r = cli(t, env, `[{"id":"b2","model":"m"},{"model":"m","promptTokens":-1}]`, "log", "--stdin")
	if r.code != 2 || !strings.HasSuffix(r.stderr, "tokenledger: log: event 1: promptTokens must be an integer from 0 to 1099511627776\n") {
		t.Fatalf("log --stdin bad: exit %d stderr %q", r.code, r.stderr)
	}

	if tokenledger.DateOf(time.Now()) != day {
		t.Skip("the UTC day changed during the test; the report's days moved by design")
	}
	r = cli(t, env, "", "report", "--days", "2")
	if r.code != 0 {
		t.Fatalf("report: exit %d stderr %s", r.code, r.stderr)
	}
	want := fmt.Sprintf(`Date        Requests  Prompt  Completion  Total     Cost  Users  Sessions  Top model
%s         0       0           0      0    $0.00      0         0  -
%s         3    6200         320   6520  $0.0045      1         1  claude-sonnet
Total              3    6200         320   6520  $0.0045      -         -  claude-sonnet
cost incomplete: 2 requests of model claude-sonnet unpriced (not in the price table; add it with TOKENLEDGER_PRICES)
`, day.AddDays(-1), day)
	if r.stdout != want {
		t.Errorf("report =\n%s\nwant\n%s", r.stdout, want)
	}

	r = cli(t, env, "", "report", "--days", "2", "--json")
	if r.code != 0 {
		t.Fatalf("report --json: exit %d stderr %s", r.code, r.stderr)
	}
	var rep tokenledger.AllReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report --json is not JSON: %v\n%s", err, r.stdout)
	}
	if len(rep.History) != 2 || rep.History[1].TotalTokens != 6520 || rep.Stats.TotalRequests != 3 || rep.Stats.TotalCost != 4_500_000 {
		t.Errorf("report --json = %+v", rep)
	}

	r = cli(t, env, "", "test")
	if r.code != 0 || !strings.Contains(r.stdout, `"kind": "file"`) || !strings.Contains(r.stdout, `"status": "ok"`) {
		t.Errorf("test: exit %d stdout %s stderr %s", r.code, r.stdout, r.stderr)
	}
}

func TestFileInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.json")
	s := startServer(t, fileEnv(path))
	r := cli(t, fileEnv(path), "", "log", "--model", "m", "--prompt", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "is in use by another tokenledger process") || !strings.HasSuffix(r.stderr, "; stop that process or use another file (TOKENLEDGER_FILE names the file)\n") {
		t.Errorf("log while serving: exit %d stderr %s", r.code, r.stderr)
	}
	s.stop(t)
}

func TestServeRepair(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.json")
	if err := os.WriteFile(path, []byte("[{\"broken\": "), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(t, fileEnv(path), "", "serve", "--addr", "127.0.0.1:0")
	if r.code != 1 || strings.Count(r.stderr, "tokenledger: ") != 1 || !strings.Contains(r.stderr, "--repair") {
		t.Fatalf("serve on a corrupt file: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	s := startServer(t, fileEnv(path), "--repair")
	if status, body := call(t, "POST", s.url+"/api/tokens", `{"model":"m","promptTokens":1}`); status != 200 {
		t.Fatalf("POST after repair: %d %v", status, body)
	}
	s.stop(t)
	if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) != 1 {
		t.Errorf("corrupt copies: %v, want one", moved)
	}
}
