package migrate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/filestore"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
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

// TestRenamedFileIsMarkedToo: a migration that renames its file also
// leaves the marker, so that a copy of the same file elsewhere (a
// read-only deployment carrying it) is skipped without importing again.
func TestRenamedFileIsMarkedToo(t *testing.T) {
	db := &marked{Store: memstore.New(nil, 0), marks: map[string]bool{}}
	res, err := Run(context.Background(), fixture(t, t.TempDir()), db, opts(io.Discard))
	if err != nil || res.RenamedTo == "" || !res.Marked {
		t.Fatalf("first run: %+v, %v; want the file renamed and marked", res, err)
	}
	res, err = Run(context.Background(), fixture(t, t.TempDir()), db, opts(io.Discard))
	if err != nil || !res.AlreadyMigrated || res.Migrated != 0 || res.AlreadyThere != 0 {
		t.Fatalf("a copy elsewhere: %+v, %v; want it skipped by the marker, nothing imported", res, err)
	}
}

// TestIgnoreMarkImportsAMarkedFile: an import asked for by hand
// (tokenledger migrate) reads a file whose marker the database holds —
// after a reset, say — and counts each record once all the same.
func TestIgnoreMarkImportsAMarkedFile(t *testing.T) {
	db := &marked{Store: memstore.New(nil, 0), marks: map[string]bool{}}
	if _, err := Run(context.Background(), fixture(t, t.TempDir()), db, opts(io.Discard)); err != nil {
		t.Fatal(err)
	}
	if err := db.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := opts(io.Discard)
	o.IgnoreMark = true
	res, err := Run(context.Background(), fixture(t, t.TempDir()), db, o)
	if err != nil || res.AlreadyMigrated || res.Migrated != 2046 {
		t.Fatalf("import by hand of a marked file: %+v, %v; want 2046 migrated", res, err)
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

func (f *failAfter) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	evs := batch.Events()
	if f.left <= 0 {
		return tokenledger.AddResult{}, tokenledger.ErrUnavailable
	}
	f.left--
	return f.Store.Add(ctx, storetest.Batch(evs))
}

// TestJournalOnlyStoreIsMigrated: a file store stopped without a clean
// Close (kill -9) before its first compaction leaves only a journal. Its
// acknowledged events are migrated like any others, and the journal is
// renamed afterwards, so a second run has nothing to do.
func TestJournalOnlyStoreIsMigrated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token_usage.json")
	fs, err := filestore.Open(path, filestore.Options{Now: func() time.Time { return fixtureNow }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	evs := []tokenledger.Event{
		{ID: "j-1", Timestamp: fixtureNow, Model: "m", PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7},
		{ID: "j-2", Timestamp: fixtureNow.Add(-24 * time.Hour), Model: "m", PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2},
	}
	if _, err := fs.Add(context.Background(), storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	// As if the process died here: what is on disk now (the journal only)
	// is copied to a second directory, and the store is closed (which
	// would compact the first).
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the usage file exists before any compaction (%v); the test needs a journal-only store", err)
	}
	files, err := filestore.Files(path)
	if err != nil || len(files) == 0 {
		t.Fatalf("files of the store: %v, %v", files, err)
	}
	crashed := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(crashed, filepath.Base(f)), readFile(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(crashed, "token_usage.json")
	db := memstore.New(func() time.Time { return fixtureNow }, 90)
	var logs bytes.Buffer
	res, err := Run(context.Background(), path, db, opts(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ran || res.Migrated != 2 {
		t.Fatalf("result %+v, want the journal's 2 events migrated", res)
	}
	if left, _ := filestore.Files(path); len(left) != 0 {
		t.Errorf("after the migration %v are still in place, want them renamed", left)
	}
	res, err = Run(context.Background(), path, db, opts(&logs))
	if err != nil || res.Ran {
		t.Errorf("second run: %+v, %v; want nothing to do", res, err)
	}
}

// TestEarlierMigratedFileIsKept: a second file migrated from the same path
// (file mode, a database, file mode again, a database again) is renamed
// next to the first one's .migrated, never over it: the earlier file is
// the only copy of its expired records.
func TestEarlierMigratedFileIsKept(t *testing.T) {
	dir := t.TempDir()
	path := fixture(t, dir)
	db := memstore.New(func() time.Time { return fixtureNow }, 90)
	var logs bytes.Buffer
	if _, err := Run(context.Background(), path, db, opts(&logs)); err != nil {
		t.Fatal(err)
	}
	first := readFile(t, path+MigratedSuffix)
	second := []byte(`[{"id":"again-1","timestamp":"2026-11-27T10:00:00Z","model":"m","promptTokens":1,"completionTokens":1,"totalTokens":2}]`)
	if err := os.WriteFile(path, second, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), path, db, opts(&logs))
	if err != nil || res.Migrated != 1 {
		t.Fatalf("second migration: %+v, %v; want 1 record", res, err)
	}
	if got := readFile(t, path+MigratedSuffix); !bytes.Equal(got, first) {
		t.Errorf("%s was replaced by the second migration", path+MigratedSuffix)
	}
	if got := readFile(t, path+MigratedSuffix+".2"); !bytes.Equal(got, second) || res.RenamedTo != path+MigratedSuffix+".2" {
		t.Errorf("the second file went to %q, want it kept as %s", res.RenamedTo, path+MigratedSuffix+".2")
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMigrationRefusesAFileInUse: a file store that still runs on the file
// (a file-mode serve, during a rolling deploy, say) appends to its
// journal; renaming that journal from under it would send every event it
// acknowledges afterwards into a file nobody reads. So a migration takes
// the file's lock, and while a store holds it, refuses with a sentence
// saying so, importing and renaming nothing. Once the store has stopped,
// the migration imports everything it acknowledged.
func TestMigrationRefusesAFileInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token_usage.json")
	fo := filestore.Options{Now: func() time.Time { return fixtureNow }, Logger: slog.New(slog.DiscardHandler)}
	fs, err := filestore.Open(path, fo)
	if err != nil {
		t.Fatal(err)
	}
	event := func(id string) []tokenledger.Event {
		return []tokenledger.Event{{ID: id, Timestamp: fixtureNow.Add(-time.Hour), Model: "m", PromptTokens: 10, TotalTokens: 10}}
	}
	ctx := context.Background()
	if _, err := fs.Add(ctx, storetest.Batch(event("e1"))); err != nil {
		t.Fatal(err)
	}
	before, _ := filestore.Files(path)
	db := memstore.New(func() time.Time { return fixtureNow }, 90)
	res, err := Run(ctx, path, db, opts(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "in use by another tokenledger process") {
		t.Fatalf("migration of a file in use: %+v, %v; want an error saying it is in use", res, err)
	}
	if after, _ := filestore.Files(path); !slices.Equal(after, before) {
		t.Errorf("files %v became %v; want nothing renamed", before, after)
	}
	if req, _ := requests(t, db); req != 0 {
		t.Errorf("database holds %d requests, want none imported", req)
	}
	if _, err := fs.Add(ctx, storetest.Batch(event("e2"))); err != nil {
		t.Fatal(err)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	res, err = Run(ctx, path, db, opts(io.Discard))
	if err != nil || res.Migrated != 2 {
		t.Fatalf("migration after the store stopped: %+v, %v; want both events", res, err)
	}
	if req, _ := requests(t, db); req != 2 {
		t.Errorf("database holds %d requests, want 2", req)
	}
}

// TestDryRunOfAFileInUse: a dry run writes, renames and marks nothing, so
// it reads a file a store is using (a snapshot of it) instead of refusing.
func TestDryRunOfAFileInUse(t *testing.T) {
	path := fixture(t, t.TempDir())
	fs, err := filestore.Open(path, filestore.Options{Now: func() time.Time { return fixtureNow }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	o := opts(io.Discard)
	o.DryRun = true
	res, err := Run(context.Background(), path, memstore.New(func() time.Time { return fixtureNow }, 90), o)
	if err != nil || res.Migrated == 0 {
		t.Errorf("dry run of a file in use: %+v, %v; want it read", res, err)
	}
}
