package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/filestore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// fuzzNow is the clock of the fuzz targets: seeds hold days around it.
var fuzzNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func fuzzClock() time.Time { return fuzzNow }

const fuzzRetention = 90

// fuzzSeeds returns (usage file, journal) pairs: a file and a journal
// written by the store itself (so they follow the format whatever its
// details), the original service's array, and some broken variants.
func fuzzSeeds(f *testing.F) [][2][]byte {
	f.Helper()
	dir := f.TempDir()
	path := filepath.Join(dir, "usage.json")
	st, err := filestore.Open(path, filestore.Options{Now: fuzzClock, RetentionDays: fuzzRetention, Logger: slog.New(slog.DiscardHandler), Version: 1})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	add := func(evs ...tokenledger.Event) {
		if _, err := st.Add(ctx, storetest.Batch(evs)); err != nil {
			f.Fatal(err)
		}
	}
	ev := func(id string, daysAgo int, model string, p, c int64) tokenledger.Event {
		return tokenledger.Event{ID: id, Timestamp: fuzzNow.AddDate(0, 0, -daysAgo), Model: model, UserID: "u-" + id[:1],
			SessionID: "s1", PromptTokens: p, CompletionTokens: c, TotalTokens: p + c, CacheReadTokens: p / 2, Cost: 1500}
	}
	add(ev("a1", 2, "gpt-4o", 100, 20), ev("b1", 1, "claude", 7, 0))
	add(ev("a2", 0, "gpt-4o", 5, 5))
	// The journal holds both lines now; Close folds them into the file.
	journals, _ := filepath.Glob(path + ".journal-*")
	var journal []byte
	if len(journals) > 0 {
		journal, _ = os.ReadFile(journals[len(journals)-1])
	}
	if err := st.Close(); err != nil {
		f.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	original := []byte(`[{"id":"token_1","date":"2026-11-26","timestamp":"2026-11-26T13:17:06.000Z","userId":"user_004","sessionId":"sess_1","model":"claude-3-5-sonnet","tokensUsed":936,"tokenType":"prompt","metadata":{"platform":"chat_ui"}},
{"id":"token_2","date":"2026-11-27","timestamp":"2026-11-27T10:00:00Z","model":"gpt-4o","tokensUsed":12,"tokenType":"completion"},
{"id":"token_1","date":"2026-11-26","timestamp":"2026-11-26T13:17:06.000Z","model":"claude-3-5-sonnet","tokensUsed":936,"tokenType":"prompt"},
{"id":"old","timestamp":"2025-01-01T00:00:00Z","model":"m","tokensUsed":1,"tokenType":"total"},
{"timestamp":"2026-11-27T10:00:00Z","model":"no-id","tokensUsed":1,"tokenType":"total"}]`)
	return [][2][]byte{
		{file, nil},
		{file, journal},
		{nil, journal},
		{original, nil},
		{file[:len(file)/2], nil},
		{file, journal[:len(journal)-3]},
		{[]byte(`{"format":"tokenledger","version":2,"days":[]}`), nil},
		{[]byte(`{"format":"tokenledger","version":1,"foldedJournal":0,"days":[{"date":"2026-11-27","events":[{"id":"x","timestamp":"2026-11-27T01:00:00Z","model":"m","promptTokens":99999999999999999999,"totalTokens":1}]}]}`), nil},
		{[]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`), nil},
		{[]byte("[{\"id\":\"\xff\xfe\",\"model\":\"m\"}]"), nil},
		{[]byte(`{"format":"tokenledger","format":"tokenledger","version":1,"days":[]}`), nil},
		{[]byte(``), []byte("00000000 []\n")},
	}
}

// scanned is what one Scan returned.
type scanned struct {
	res    filestore.ScanResult
	err    error
	events []tokenledger.Event
}

func scan(path string) scanned {
	var s scanned
	s.res, s.err = filestore.Scan(path, filestore.ScanOptions{Now: fuzzClock, RetentionDays: fuzzRetention, BatchSize: 7},
		func(evs []tokenledger.Event) error {
			if len(evs) == 0 || len(evs) > 7 {
				return fmt.Errorf("a batch of %d events, want 1 to 7", len(evs))
			}
			s.events = append(s.events, evs...)
			return nil
		})
	return s
}

// checkScan asserts what every Scan result must satisfy.
func checkScan(t *testing.T, s scanned) {
	t.Helper()
	if s.err != nil {
		if s.err.Error() == "" {
			t.Fatal("an error without a message")
		}
		if strings.Contains(s.err.Error(), "a batch of") {
			t.Fatal(s.err)
		}
		return
	}
	r := s.res
	if r.Records != r.Valid+r.Expired+r.Invalid+r.Duplicates {
		t.Fatalf("Records %d != Valid %d + Expired %d + Invalid %d + Duplicates %d", r.Records, r.Valid, r.Expired, r.Invalid, r.Duplicates)
	}
	if r.Valid != len(s.events) || r.Invalid != len(r.InvalidRecords) {
		t.Fatalf("Valid %d but %d events handed over; Invalid %d but %d listed", r.Valid, len(s.events), r.Invalid, len(r.InvalidRecords))
	}
	if r.Records > 0 && r.Format == "" {
		t.Fatalf("%d records without a format", r.Records)
	}
	oldest := tokenledger.DateOf(fuzzNow).AddDays(-fuzzRetention)
	seen := map[string]bool{}
	for i := range s.events {
		e := &s.events[i]
		if err := e.Validate(); err != nil {
			t.Fatalf("event %d is invalid: %v", i, err)
		}
		if e.ID == "" || e.Timestamp.IsZero() {
			t.Fatalf("event %d has no id or no timestamp: %+v", i, e)
		}
		if e.Day() < oldest {
			t.Fatalf("event %d is expired (%s) but was handed over", i, e.Day())
		}
		k := string(e.Day()) + "/" + e.ID
		if seen[k] {
			t.Fatalf("event %d: (day, id) %s handed over twice", i, k)
		}
		seen[k] = true
	}
}

// writeFiles lays out a usage file and a journal in a new directory.
func writeFiles(t *testing.T, file, journal []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "usage.json")
	if len(file) > 0 {
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(journal) > 0 {
		if err := os.WriteFile(path+".journal-000001", journal, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// FuzzScan feeds arbitrary usage files and journals to Scan: it must not
// panic, and it either returns an error or a result whose counts add up
// and whose events are valid, unexpired and unique.
func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, file, journal []byte) {
		path := writeFiles(t, file, journal)
		checkScan(t, scan(path))
	})
}

// totals sums events the way a store's days would.
func totals(events []tokenledger.Event) (n, prompt, completion, total int64, cost tokenledger.Nanos) {
	for _, e := range events {
		n++
		prompt += e.PromptTokens
		completion += e.CompletionTokens
		total += e.TotalTokens
		cost += e.Cost
	}
	return
}

func dayTotals(days []tokenledger.Day) (n, prompt, completion, total int64, cost tokenledger.Nanos) {
	for _, d := range days {
		n += d.RequestCount
		prompt += d.PromptTokens
		completion += d.CompletionTokens
		total += d.TotalTokens
		cost += d.Cost
	}
	return
}

// snapshot returns the name and content of every file in dir but the
// lock.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

// FuzzOpen opens arbitrary usage files and journals with the store. It
// must not panic, and:
//   - when Scan refuses the files, Open refuses them too and changes no
//     file (a corrupt file is never overwritten);
//   - when Scan reads them, Open does too and holds exactly what Scan
//     handed over; after Close (which may compact) a new Scan hands over
//     the same events.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s[0], s[1])
	}
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, file, journal []byte) {
		path := writeFiles(t, file, journal)
		before := scan(path)
		checkScan(t, before)
		files := snapshot(t, filepath.Dir(path))

		st, err := filestore.Open(path, filestore.Options{Now: fuzzClock, RetentionDays: fuzzRetention, Logger: log})
		if err != nil {
			if before.err == nil {
				t.Fatalf("Scan read the files (%+v) but Open refused them: %v", before.res, err)
			}
			if errors.Is(err, filestore.ErrLocked) {
				t.Fatalf("Open: %v", err)
			}
			if after := snapshot(t, filepath.Dir(path)); !mapsEqual(files, after) {
				t.Fatalf("Open refused the files (%v) but changed them", err)
			}
			return
		}
		if before.err != nil {
			st.Close()
			t.Fatalf("Scan refused the files (%v) but Open read them", before.err)
		}
		oldest := tokenledger.DateOf(fuzzNow).AddDays(-fuzzRetention)
		days, err := st.Days(context.Background(), tokenledger.DayQuery{From: oldest, To: tokenledger.DateOf(fuzzNow).AddDays(1)})
		if err != nil {
			st.Close()
			t.Fatalf("Days: %v", err)
		}
		// Events in the future (beyond the query's end) are not in days.
		var inWindow []tokenledger.Event
		for _, e := range before.events {
			if e.Day() <= tokenledger.DateOf(fuzzNow).AddDays(1) {
				inWindow = append(inWindow, e)
			}
		}
		if got, want := fmt.Sprint(dayTotals(days)), fmt.Sprint(totals(inWindow)); got != want {
			st.Close()
			t.Fatalf("Open holds (requests, prompt, completion, total, cost) %s, Scan handed over %s", got, want)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		after := scan(path)
		if after.err != nil {
			t.Fatalf("after Open and Close the files no longer scan: %v", after.err)
		}
		if got, want := eventKeys(after.events), eventKeys(before.events); !slices.Equal(got, want) {
			t.Fatalf("after Open and Close Scan hands over\n%v\nbefore it handed over\n%v", got, want)
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// eventKeys describes events by day, id and counters, sorted.
func eventKeys(events []tokenledger.Event) []string {
	keys := make([]string, len(events))
	for i, e := range events {
		keys[i] = fmt.Sprintf("%s/%s p%d c%d t%d r%d w%d x%d $%d %s|%s|%s|%s", e.Day(), e.ID, e.PromptTokens, e.CompletionTokens,
			e.TotalTokens, e.CacheReadTokens, e.CacheWriteTokens, e.ReasoningTokens, e.Cost, e.Model, e.Provider, e.UserID, e.SessionID)
	}
	slices.Sort(keys)
	return keys
}
