package app

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// scrapeText returns the App's /metrics in Prometheus's text format.
func scrapeText(t *testing.T, a *App) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// histogramCount returns the sample count of a series in text, -1 when
// the series is missing.
func histogramCount(text, name, labels string) int {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+"_count{"+labels+"}") + ` (\d+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestStoreMetricsOnRedis: the migration and a Log through the spool show
// as calls of the Redis store and as migrated records.
func TestStoreMetricsOnRedis(t *testing.T) {
	srv := redistest.Shared(t)
	file := filepath.Join(t.TempDir(), "token_usage.json")
	day := time.Now().UTC().Format("2006-01-02")
	legacy := `[{"id":"l1","date":"` + day + `","timestamp":"` + day + `T00:00:00Z","model":"gpt-4o","tokensUsed":4,"tokenType":"prompt"},` +
		`{"id":"l2","date":"` + day + `","timestamp":"` + day + `T00:00:00Z","model":"gpt-4o","tokensUsed":5,"tokenType":"completion"}]`
	if err := os.WriteFile(file, []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := open(t, load(t, map[string]string{"REDIS_URL": srv.URL(), "TOKENLEDGER_FILE": file, "TOKENLEDGER_KEY_PREFIX": redistest.Prefix()}), Options{Spool: true, Migrate: true})
	ctx := context.Background()
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Service.Log(ctx, []tokenledger.Event{{Model: "gpt-4o", PromptTokens: 1, TotalTokens: 1}}); err != nil {
		t.Fatal(err)
	}
	srvHTTP := httptest.NewServer(a.Handler())
	defer srvHTTP.Close()
	want := `
# HELP tokenledger_migrated_records_total Records of the local file this process migrated into the database.
# TYPE tokenledger_migrated_records_total counter
tokenledger_migrated_records_total 2
# HELP tokenledger_fallback_active 1 while events go to the local spool instead of the database.
# TYPE tokenledger_fallback_active gauge
tokenledger_fallback_active 0
`
	if err := testutil.ScrapeAndCompare(srvHTTP.URL+"/metrics", strings.NewReader(want), "tokenledger_migrated_records_total", "tokenledger_fallback_active"); err != nil {
		t.Error(err)
	}
	text := scrapeText(t, a)
	if n := histogramCount(text, "tokenledger_store_operation_duration_seconds", `op="add",store="redis"`); n < 2 {
		t.Errorf("store add calls on redis = %d, want at least 2 (the migration and the Log)\n%s", n, text)
	}
	if strings.Contains(text, `tokenledger_store_errors_total{op="add",store="redis"} 1`) {
		t.Errorf("a store error was counted on a working Redis")
	}
}

// TestStoreMetricsWhenTheDatabaseIsDown: the spool takes the event and
// hides the outage from the caller; the metrics show it, as a failed add
// on the database, an active fallback and one spooled event.
func TestStoreMetricsWhenTheDatabaseIsDown(t *testing.T) {
	srv := redistest.Server(t)
	a, _ := open(t, load(t, map[string]string{"REDIS_URL": srv.URL(), "TOKENLEDGER_FILE": filepath.Join(t.TempDir(), "u.json"),
		"TOKENLEDGER_KEY_PREFIX": redistest.Prefix(), "TOKENLEDGER_DB_TIMEOUT": "200ms"}), Options{Spool: true})
	srv.Kill(t) // after Open, so that the Log finds it gone
	res, err := a.Service.Log(context.Background(), []tokenledger.Event{{Model: "gpt-4o", PromptTokens: 1, TotalTokens: 1}})
	if err != nil || !res.Degraded {
		t.Fatalf("Log = %+v, %v; want it spooled", res, err)
	}
	text := scrapeText(t, a)
	for _, line := range []string{`tokenledger_store_errors_total{op="add",store="redis"} 1`, "tokenledger_fallback_active 1", "tokenledger_spool_events 1"} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("/metrics lacks %q\n%s", line, text)
		}
	}
}

// TestStoreMetricsOnFile: the file store's calls are measured under
// store="file", and a file store has no spool gauges.
func TestStoreMetricsOnFile(t *testing.T) {
	a, _ := open(t, load(t, map[string]string{"TOKENLEDGER_FILE": filepath.Join(t.TempDir(), "u.json")}), Options{})
	logOne(t, a)
	if _, err := a.Service.History(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	text := scrapeText(t, a)
	for op, want := range map[string]int{"add": 1, "days": 1} {
		if n := histogramCount(text, "tokenledger_store_operation_duration_seconds", `op="`+op+`",store="file"`); n != want {
			t.Errorf("file %s calls = %d, want %d", op, n, want)
		}
	}
	if strings.Contains(text, "tokenledger_fallback_active") {
		t.Error("a file store shows the spool's gauges")
	}
}
