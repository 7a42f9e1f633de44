package migrate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/memstore"
)

var fixtureNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixture copies the original service's sample file into dir.
func fixture(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/original-format/token_usage.json")
	if err != nil {
		t.Fatalf("read the shared fixture: %v", err)
	}
	path := filepath.Join(dir, "token_usage.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// marked is a memstore that remembers marks, standing in for the database
// marker in unit tests (the Redis marker is tested against a real server).
type marked struct {
	*memstore.Store
	mu    sync.Mutex
	marks map[string]bool
}

func (m *marked) HasMark(_ context.Context, name string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.marks[name], nil
}

func (m *marked) SetMark(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.marks[name] = true
	return nil
}

func opts(logs io.Writer) Options {
	return Options{Now: func() time.Time { return fixtureNow }, RetentionDays: 90, Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

func requests(t *testing.T, st tokenledger.Store) (req, tokens int64) {
	t.Helper()
	days, err := st.Days(context.Background(), tokenledger.DayQuery{From: "2026-08-01", To: "2026-11-27"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		req += d.RequestCount
		tokens += d.TotalTokens
	}
	return req, tokens
}

func TestMigratesTheOriginalFileOnce(t *testing.T) {
	dir := t.TempDir()
	path := fixture(t, dir)
	db := memstore.New(nil, 0)
	var logs bytes.Buffer
	res, err := Run(context.Background(), path, db, opts(&logs))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Ran: true, File: path, Format: "original", Records: 2405, Migrated: 2046, Skipped: 359,
		SkippedExpired: 354, SkippedInvalid: 2, DuplicatesInFile: 3, RenamedTo: path + MigratedSuffix}
	if res != want {
		t.Errorf("result:\n got  %+v\n want %+v", res, want)
	}
	if req, tokens := requests(t, db); req != 2046 || tokens != 4447666 {
		t.Errorf("database holds %d requests, %d tokens; want 2046 and 4447666 (expected.json)", req, tokens)
	}
	if !strings.Contains(logs.String(), "📊 Migrated 2046 records from file to database") {
		t.Errorf("log lacks the migration line:\n%s", logs.String())
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file is still at %s after migrating", path)
	}
	// The next start finds nothing to do.
	res, err = Run(context.Background(), path, db, opts(io.Discard))
	if err != nil || res.Ran {
		t.Errorf("second run: %+v, %v; want nothing to do", res, err)
	}
}

func TestConcurrentMigrationsCountEveryRecordOnce(t *testing.T) {
	db := memstore.New(nil, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	migrated, already := 0, 0
	for range 4 {
		path := fixture(t, t.TempDir()) // each instance has its own copy
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Run(context.Background(), path, db, opts(io.Discard))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			migrated += res.Migrated
			already += res.AlreadyThere
			mu.Unlock()
		}()
	}
	wg.Wait()
	if req, tokens := requests(t, db); req != 2046 || tokens != 4447666 {
		t.Errorf("after 4 concurrent migrations: %d requests, %d tokens; want 2046 and 4447666", req, tokens)
	}
	if migrated != 2046 || already != 3*2046 {
		t.Errorf("migrated %d, already there %d; want 2046 and %d", migrated, already, 3*2046)
	}
}

func TestReadOnlyFileLeavesAMarker(t *testing.T) {
	rename = func(string, string) error {
		return &os.LinkError{Op: "rename", Err: errors.New("read-only file system")}
	}
	defer func() { rename = os.Rename }()
	path := fixture(t, t.TempDir())
	db := &marked{Store: memstore.New(nil, 0), marks: map[string]bool{}}
	res, err := Run(context.Background(), path, db, opts(io.Discard))
	if err != nil || !res.Marked || res.RenamedTo != "" {
		t.Fatalf("first run: %+v, %v; want a marker", res, err)
	}
	res, err = Run(context.Background(), path, db, opts(io.Discard))
	if err != nil || !res.AlreadyMigrated || res.Migrated != 0 {
		t.Fatalf("second run: %+v, %v; want already migrated", res, err)
	}
	if req, _ := requests(t, db); req != 2046 {
		t.Errorf("database holds %d requests, want 2046", req)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	path := fixture(t, t.TempDir())
	db := memstore.New(nil, 0)
	o := opts(io.Discard)
	o.DryRun = true
	var last [2]int
	o.Progress = func(done, total int) { last = [2]int{done, total} }
	res, err := Run(context.Background(), path, db, o)
	if err != nil || res.Migrated != 2046 || !res.DryRun {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if last != [2]int{2046, 2046} {
		t.Errorf("last progress = %v, want [2046 2046]", last)
	}
	if db.Events() != 0 {
		t.Errorf("a dry run stored %d events", db.Events())
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("a dry run moved the file: %v", err)
	}
}

func TestDatabaseFailureMidwayThenRetry(t *testing.T) {
	path := fixture(t, t.TempDir())
	db := &failAfter{Store: memstore.New(nil, 0), left: 1}
	_, err := Run(context.Background(), path, db, opts(io.Discard))
	if !errors.Is(err, tokenledger.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a failed migration moved the file: %v", err)
	}
	db.left = 1 << 30
	res, err := Run(context.Background(), path, db, opts(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if req, _ := requests(t, db); req != 2046 || res.Migrated+res.AlreadyThere != 2046 {
		t.Errorf("after the retry: %d requests, result %+v; want 2046", req, res)
	}
}

func TestCorruptFileIsAnErrorAndStaysPut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token_usage.json")
	os.WriteFile(path, []byte(`[{"id":"a","timestamp":"2026-11-27T10:00:00Z","model":"m","tokensUsed":1,"tokenType":"prompt"},{"id":`), 0o644)
	db := memstore.New(nil, 0)
	_, err := Run(context.Background(), path, db, opts(io.Discard))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want an error naming %s", err, path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the corrupt file was moved: %v", err)
	}
	if db.Events() != 0 {
		t.Errorf("%d events of a damaged file were imported, want none", db.Events())
	}
}

// failAfter fails every Add after the first left calls.
type failAfter struct {
	*memstore.Store
	left int
}

func (f *failAfter) Add(ctx context.Context, evs []tokenledger.Event) (tokenledger.AddResult, error) {
	if f.left <= 0 {
		return tokenledger.AddResult{}, tokenledger.ErrUnavailable
	}
	f.left--
	return f.Store.Add(ctx, evs)
}
