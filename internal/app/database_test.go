package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestDatabaseStoresWithSpoolAndMigration opens serve's configuration on a
// real Redis, directly and through the REST front: the local file is
// migrated once, events are logged through the spool-wrapped store, and
// /api/test reports the database and the migration.
func TestDatabaseStoresWithSpoolAndMigration(t *testing.T) {
	srv := redistest.Shared(t)
	front := kvresttest.Start(t, srv.Addr(), kvresttest.Options{Token: "kv-test-token-0123456789"})
	for _, tc := range []struct {
		name, kind string
		env        map[string]string
	}{
		{"redis", "redis", map[string]string{"REDIS_URL": srv.URL()}},
		{"kv-rest", "kv-rest", map[string]string{"KV_REST_API_URL": front.URL(), "KV_REST_API_TOKEN": front.Token()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "token_usage.json")
			now := time.Now().UTC().Truncate(24 * time.Hour) // today, never in the future
			legacy := `[{"id":"legacy-1","date":"` + now.Format("2006-01-02") + `","timestamp":"` + now.Format(time.RFC3339) +
				`","userId":"u1","sessionId":"s1","model":"gpt-4o","tokensUsed":40,"tokenType":"prompt","metadata":{}}]`
			if err := os.WriteFile(file, []byte(legacy), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.env["TOKENLEDGER_FILE"] = file
			tc.env["TOKENLEDGER_KEY_PREFIX"] = redistest.Prefix()
			a, logs := open(t, load(t, tc.env), Options{Spool: true, Migrate: true})
			if a.Info.Kind != tc.kind || !a.Info.Database {
				t.Fatalf("info = %+v, want a %s database", a.Info, tc.kind)
			}
			if string(a.Config.Store) != tc.kind { // one name for the kind, in config and in /api/test
				t.Errorf("config names the store %q, /api/test %q", a.Config.Store, a.Info.Kind)
			}
			ctx := context.Background()
			if err := a.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if m := a.Migration(); !m.Ran || m.Migrated != 1 {
				t.Errorf("migration = %+v, want 1 record migrated", m)
			}
			if _, err := os.Stat(file + ".migrated"); err != nil {
				t.Errorf("the file was not renamed: %v", err)
			}
			res, err := a.Service.Log(ctx, []tokenledger.Event{{Model: "gpt-4o", PromptTokens: 2, TotalTokens: 2}})
			if err != nil || res.Accepted != 1 || res.Degraded {
				t.Fatalf("Log = %+v, %v", res, err)
			}
			today, err := a.Service.TodayUsage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if today == nil || today.PromptTokens != 42 {
				t.Errorf("today = %+v, want 42 prompt tokens (40 migrated + 2 logged)", today)
			}
			for _, want := range []string{"📊 Migrated 1 records from file to database", "fallback spool " + file + ".spool", "📊 Logged 2 tokens for model gpt-4o (Database)"} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logs.String())
				}
			}
		})
	}
}

// TestDeliverAndMigrateKeepsToOneBudget: a serverless request spends at most one
// budget (2 s) on the instance's work — the migration and the delivery of
// spooled events together — however slow the database: here both the
// migration's first call and the delivery hang past the database timeout.
// Each used to get a budget of its own (4 s), before the request itself.
func TestDeliverAndMigrateKeepsToOneBudget(t *testing.T) {
	now := time.Now().UTC().Truncate(24 * time.Hour)
	legacy := `[{"id":"budget-1","date":"` + now.Format("2006-01-02") + `","timestamp":"` + now.Format(time.RFC3339) +
		`","model":"gpt-4o","tokensUsed":40,"tokenType":"prompt","metadata":{}}]`
	a, front := kvAppWithSpooledEvent(t, []byte(legacy))
	ctx := context.Background()

	// The migration's first call and the delivery both hang.
	front.Inject(kvresttest.Fault{Kind: kvresttest.Delay, Delay: 5 * time.Second}, kvresttest.Fault{Kind: kvresttest.Delay, Delay: 5 * time.Second})
	start := time.Now()
	a.DeliverAndMigrate(ctx)
	took := time.Since(start)
	t.Logf("DeliverAndMigrate with a hung database took %s", took)
	if took > serverlessBudget+time.Second {
		t.Errorf("DeliverAndMigrate took %s, want at most about the %s budget for migration and delivery together", took, serverlessBudget)
	}
}

// TestDeliverAndMigrateDeliversFirst: a serverless request delivers the
// spooled events first and migrates with the time left, so that a
// migration that cannot finish within the budget (a large file, a slow
// database) never keeps acknowledged events in the spool, and reads
// refused, request after request.
func TestDeliverAndMigrateDeliversFirst(t *testing.T) {
	original, err := os.ReadFile("../../testdata/original-format/token_usage.json")
	if err != nil {
		t.Fatal(err)
	}
	a, front := kvAppWithSpooledEvent(t, original)
	ctx := context.Background()

	// Every request now takes 700 ms: the migration needs several, more
	// than the budget; the delivery needs one.
	front.SetRandomFaults(kvresttest.RandomFaults{Delay: 1, DelayFor: 700 * time.Millisecond, Seed: 1})
	a.DeliverAndMigrate(ctx)
	front.ClearFaults()
	if st := a.fb.FallbackStatus(); st.PendingEvents != 0 {
		t.Errorf("after one request %d events still wait in the spool; want them delivered before the migration takes the budget", st.PendingEvents)
	}
}

// kvAppWithSpooledEvent opens serve's configuration on the REST front over
// a real Redis, with migration on and a local file holding fileContent to
// migrate, and spools one event (its write hangs past the database
// timeout). Nothing has been migrated yet.
func kvAppWithSpooledEvent(t *testing.T, fileContent []byte) (*App, *kvresttest.Server) {
	t.Helper()
	srv := redistest.Shared(t)
	front := kvresttest.Start(t, srv.Addr(), kvresttest.Options{Token: "kv-test-token-0123456789"})
	file := filepath.Join(t.TempDir(), "token_usage.json")
	if err := os.WriteFile(file, fileContent, 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := open(t, load(t, map[string]string{
		"KV_REST_API_URL": front.URL(), "KV_REST_API_TOKEN": front.Token(),
		"TOKENLEDGER_FILE": file, "TOKENLEDGER_KEY_PREFIX": redistest.Prefix(),
	}), Options{Spool: true, Migrate: true})
	front.Inject(kvresttest.Fault{Kind: kvresttest.Delay, Delay: 5 * time.Second})
	res, err := a.Service.Log(context.Background(), []tokenledger.Event{{Model: "gpt-4o", PromptTokens: 2, TotalTokens: 2}})
	if err != nil || !res.Degraded {
		t.Fatalf("Log with a hung database = %+v, %v; want it spooled", res, err)
	}
	return a, front
}

// TestPrepareSaysSpooledEventsWaitOnlyWhenTheyDo: with the database down
// and nothing spooled, a serverless request's delivery attempt has nothing
// to deliver, and its log line must not send an operator looking for
// spooled events; once events wait, it says so.
func TestPrepareSaysSpooledEventsWaitOnlyWhenTheyDo(t *testing.T) {
	srv := redistest.Server(t)
	srv.Kill(t)
	env := map[string]string{"REDIS_URL": srv.URL(), "TOKENLEDGER_FILE": filepath.Join(t.TempDir(), "token_usage.json"),
		"TOKENLEDGER_KEY_PREFIX": redistest.Prefix(), "TOKENLEDGER_DB_TIMEOUT": "200ms"}
	a, logs := open(t, load(t, env), Options{Spool: true})
	ctx := context.Background()
	const line = "Spooled events not delivered yet"
	a.DeliverAndMigrate(ctx)
	if strings.Contains(logs.String(), line) {
		t.Errorf("with nothing spooled, the log says %q:\n%s", line, logs.String())
	}
	res, err := a.Service.Log(ctx, []tokenledger.Event{{Model: "m", PromptTokens: 1, TotalTokens: 1}})
	if err != nil || !res.Degraded {
		t.Fatalf("Log with the database down: %+v, %v; want it spooled", res, err)
	}
	a.DeliverAndMigrate(ctx)
	if !strings.Contains(logs.String(), line) {
		t.Errorf("with an event spooled, the log lacks %q:\n%s", line, logs.String())
	}
}
