package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestFailedConversionIsNotRedoneOnEveryWrite: when converting an
// original-format file fails (here its temp file cannot be created, as on
// a full disk; journal lines still fit), the events still go to the
// journal, and the conversion is retried by a later compaction — not again
// on every write, which would reread the whole file each time and start a
// new journal per write. Nothing is lost: once the disk takes it again,
// Close converts and every event is there. (createSnapshot is package
// state, so this test is not parallel.)
func TestFailedConversionIsNotRedoneOnEveryWrite(t *testing.T) {
	original, err := os.ReadFile(filepath.Join(fixtureDir, "token_usage.json"))
	if err != nil {
		t.Fatalf("the shared fixture is missing: %v", err)
	}
	path := tempPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, original)
	var logs logBuffer
	st, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	before := allDays(t, st, fixedNow, tokenledger.DefaultRetentionDays)

	createSnapshot = func(string, string, os.FileMode) (*journal.AtomicFile, error) {
		return nil, errors.New("no space left on device (injected)")
	}
	defer func() { createSnapshot = journal.CreateAtomic }()
	const writes = 10
	var addErr error
	for i := range writes {
		e := testEvent("conv", i, 1, fixedNow)
		if _, err := st.Add(t.Context(), storetest.Batch([]tokenledger.Event{e})); err != nil && addErr == nil {
			addErr = err
		}
	}
	createSnapshot = journal.CreateAtomic
	if addErr != nil {
		t.Fatalf("Add while the conversion cannot be written: %v (the journal lines fit the limit)", addErr)
	}
	if n := strings.Count(logs.String(), "could not convert"); n != 1 {
		t.Errorf("the conversion was tried %d times for %d writes, want once", n, writes)
	}
	if js, _ := listJournals(path); len(js) != 1 {
		t.Errorf("%d journals after %d writes, want 1", len(js), writes)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close (converts now that it can): %v", err)
	}
	st = mustOpen(t, path, Options{Now: clockAt(fixedNow)})
	after := allDays(t, st, fixedNow, tokenledger.DefaultRetentionDays)
	var was, is int64
	for _, d := range before {
		was += d.RequestCount
	}
	for _, d := range after {
		is += d.RequestCount
	}
	if is != was+writes {
		t.Errorf("after reopening: %d requests, want %d (the file's %d + %d written)", is, was+writes, was, writes)
	}
}
