package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// TestReportWhileServing: while serve holds the local file, report says
// so and how to read it instead; report --url reads the same numbers from
// the server (the same JSON as report on the file once serve stopped),
// with --days or --since/--until; test --url prints the server's check.
func TestReportWhileServing(t *testing.T) {
	env := fileEnv(filepath.Join(t.TempDir(), "token_usage.json"))
	s := startServer(t, env)
	today := tokenledger.DateOf(time.Now())
	for i := range 3 { // 100, 200, 300 tokens on today − 2, today − 1, today
		ts := today.AddDays(i - 2).Time().Add(time.Hour)
		if today.AddDays(i-2) == today {
			ts = time.Now().Add(-time.Second)
		}
		body := fmt.Sprintf(`{"id":"r%d","model":"gpt-4o","promptTokens":%d,"timestamp":%q}`, i, 100*(i+1), ts.UTC().Format(time.RFC3339Nano))
		if status, answer := call(t, "POST", s.url+"/api/tokens", body); status != 200 {
			t.Fatalf("POST: %d %v", status, answer)
		}
	}

	r := cli(t, env, "", "report")
	if r.code != 1 || !strings.Contains(r.stderr, "is in use by another tokenledger process") || !strings.Contains(r.stderr, "tokenledger report --url http://") {
		t.Errorf("report on the file serve holds: exit %d\n%s", r.code, r.stderr)
	}

	r = cli(t, nil, "", "report", "--url", s.url, "--days", "3")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "\nTotal              3     600") {
		t.Errorf("report --url: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	since, until := string(today.AddDays(-2)), string(today.AddDays(-1))
	r = cli(t, nil, "", "report", "--url", s.url+"/", "--since", since, "--until", until)
	if r.code != 0 || !strings.Contains(r.stdout, "\nTotal              2     300") || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("report --url --since --until: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	remoteJSON := cli(t, nil, "", "report", "--url", s.url, "--json", "--since", since).stdout
	r = cli(t, nil, "", "test", "--url", s.url)
	if r.code != 0 || !strings.Contains(r.stdout, `"status": "ok"`) || !strings.Contains(r.stdout, `"storageType": "file-system"`) {
		t.Errorf("test --url: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	s.stop(t)
	local := cli(t, env, "", "report", "--json", "--since", since)
	if local.code != 0 || local.stdout != remoteJSON || !strings.Contains(local.stdout, `"totalTokensAllTime": 600`) {
		t.Errorf("report --json on the file:\n%s\nreport --url --json while serving:\n%s", local.stdout, remoteJSON)
	}
}

func TestReportURLNeedsTheReadKey(t *testing.T) {
	const readKey = "read-key-0123456789abcdef"
	env := fileEnv(filepath.Join(t.TempDir(), "token_usage.json"))
	env["TOKENLEDGER_READ_KEY"] = readKey
	s := startServer(t, env)
	r := cli(t, nil, "", "report", "--url", s.url)
	if r.code != 1 || !strings.Contains(r.stderr, "answered HTTP 401: Reading usage needs a key") || !strings.Contains(r.stderr, "reads use TOKENLEDGER_READ_KEY") {
		t.Errorf("without a key: exit %d\n%s", r.code, r.stderr)
	}
	r = cli(t, map[string]string{"TOKENLEDGER_READ_KEY": readKey}, "", "report", "--url", s.url)
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, readKey) {
		t.Errorf("with TOKENLEDGER_READ_KEY: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The server's own rules (its retention) decide the days: its 400 is a
	// usage error naming what it refused.
	r = cli(t, map[string]string{"TOKENLEDGER_READ_KEY": readKey}, "", "report", "--url", s.url, "--since", "2001-01-01")
	if r.code != 2 || !strings.Contains(r.stderr, "answered HTTP 400: since must be within the retention window of 90 days") {
		t.Errorf("--since outside the window: exit %d\n%s", r.code, r.stderr)
	}
}

func TestTestURLReportsAFailedCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":"error","storageType":"database","database":{"configured":true,"kind":"redis","connected":false,"error":"redis 10.0.0.1:6379: connection refused"}}`)
	}))
	defer srv.Close()
	r := cli(t, nil, "", "test", "--url", srv.URL)
	if r.code != 1 || !strings.Contains(r.stdout, `"status": "error"`) || !strings.Contains(r.stderr, "storage check failed: redis 10.0.0.1:6379: connection refused") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, nil, "", "test", "--url", "ftp://x")
	if r.code != 2 || !strings.Contains(r.stderr, "test: --url must be an http:// or https:// URL") {
		t.Errorf("bad URL: exit %d\n%s", r.code, r.stderr)
	}
}

func TestReportDateFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--days", "3", "--since", "2026-11-01"}, "report: give --days or --since (with --until), not both"},
		{[]string{"--until", "2026-11-01"}, "report: --until needs --since, the first day to show"},
		{[]string{"--since", "2026-02-30"}, "report: --since 2026-02-30 is not a real date: February 2026 has 28 days"},
		{[]string{"--since", "1.11.2026"}, `report: --since must be a YYYY-MM-DD date, not "1.11.2026"`},
		{[]string{"--since", "2001-01-01"}, "report: --since must be within the retention window of 90 days"},
		{[]string{"--since", string(tokenledger.DateOf(time.Now()).AddDays(1))}, "report: --since must not be after until"},
	} {
		r := cli(t, memoryEnv, "", append([]string{"report"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "tokenledger: "+tc.want) {
			t.Errorf("report %v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
