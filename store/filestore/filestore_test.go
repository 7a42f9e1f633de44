package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store {
		return mustOpen(t, tempPath(t), Options{Now: o.Now, RetentionDays: o.RetentionDays})
	})
}

// TestConformanceCompactingOften runs the suite with a tiny compaction
// threshold, so that compactions run in the background throughout.
func TestConformanceCompactingOften(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store {
		return mustOpen(t, tempPath(t), Options{Now: o.Now, RetentionDays: o.RetentionDays, CompactBytes: 2048})
	})
}

func TestInfo(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	defer s.Close()
	if got, want := s.Info(), (tokenledger.StoreInfo{Kind: "file", Database: false, Location: path}); got != want {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		t.Errorf("Open did not create the parent directory: %v", err)
	}
}

func TestCloseTwiceAndCheckLeavesNothing(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.Contains(e.Name(), "check") {
			t.Errorf("Check left %s behind", e.Name())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Check(context.Background()); !errors.Is(err, tokenledger.ErrClosed) {
		t.Errorf("Check after Close: %v, want ErrClosed", err)
	}
}

// TestRestart: what was written is there after Close and Open, with and
// without compactions in between.
func TestRestart(t *testing.T) {
	for _, compact := range []int64{0, 1500} {
		t.Run(fmt.Sprintf("CompactBytes=%d", compact), func(t *testing.T) {
			path := tempPath(t)
			o := Options{RetentionDays: 30, CompactBytes: compact}
			s := mustOpen(t, path, o)
			var evs []tokenledger.Event
			for i := range 600 {
				evs = append(evs, testEvent("rs", i, 12, fixedNow))
			}
			for i := 0; i < len(evs); i += 7 {
				if _, err := s.Add(context.Background(), storetest.Batch(evs[i:min(i+7, len(evs))])); err != nil {
					t.Fatal(err)
				}
			}
			// Duplicates are not counted again.
			if r, err := s.Add(context.Background(), storetest.Batch(evs[:50])); err != nil || r.Accepted() != 0 {
				t.Fatalf("re-adding: accepted %d, err %v", r.Accepted(), err)
			}
			before := allDays(t, s, fixedNow, 30)
			sameDays(t, "before restart", before, referenceDays(t, fixedNow, 30, evs))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if j, _ := listJournals(path); len(j) != 0 {
				t.Errorf("Close left journals %v", j)
			}
			s = mustOpen(t, path, o)
			defer s.Close()
			sameDays(t, "after restart", allDays(t, s, fixedNow, 30), before)
			if r, err := s.Add(context.Background(), storetest.Batch(evs)); err != nil || r.Accepted() != 0 {
				t.Fatalf("after restart, re-adding: accepted %d, err %v (ids must survive restarts)", r.Accepted(), err)
			}
		})
	}
}

// TestRestartWithoutClose: a process that never calls Close (it crashed)
// leaves its events in the journal; the next Open counts them once.
func TestRestartWithoutClose(t *testing.T) {
	path := tempPath(t)
	c := startChild(t, "write-no-close", "FILESTORE_PATH="+path)
	c.waitLine(t, "done")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.stderr.String())
	}
	if j, _ := listJournals(path); len(j) == 0 {
		t.Fatalf("the child left no journal; the test would not test recovery")
	}
	s := mustOpen(t, path, Options{})
	defer s.Close()
	sameDays(t, "after a crash", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, noCloseEvents()))
}

// noCloseEvents are what the write-no-close child writes.
func noCloseEvents() []tokenledger.Event {
	var evs []tokenledger.Event
	for i := range 500 {
		evs = append(evs, testEvent("nc", i, 5, fixedNow))
	}
	return evs
}

// TestResetSurvivesCrash: a Reset followed by a crash stays reset; events
// added after it stay.
func TestResetSurvivesCrash(t *testing.T) {
	path := tempPath(t)
	c := startChild(t, "reset-no-close", "FILESTORE_PATH="+path)
	c.waitLine(t, "done")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.stderr.String())
	}
	s := mustOpen(t, path, Options{})
	defer s.Close()
	_, after := resetEvents()
	sameDays(t, "after reset and crash", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, after))
	if r, err := s.Add(context.Background(), storetest.Batch(after)); err != nil || r.Accepted() != 0 {
		t.Errorf("events added after the reset: re-adding accepted %d, err %v", r.Accepted(), err)
	}
}

// resetEvents are what the reset-no-close child writes before and after
// its Reset.
func resetEvents() (before, after []tokenledger.Event) {
	for i := range 300 {
		before = append(before, testEvent("before", i, 4, fixedNow))
	}
	for i := range 40 {
		after = append(after, testEvent("after", i, 2, fixedNow))
	}
	return before, after
}

// TestReset: Reset empties memory and the file, durably, and the same ids
// count again afterwards.
func TestReset(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{CompactBytes: 1000})
	before, after := resetEvents()
	if _, err := s.Add(context.Background(), storetest.Batch(before)); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if j, _ := listJournals(path); len(j) != 0 {
		t.Errorf("Reset left journals %v", j)
	}
	res, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil })
	if err != nil || res.Records != 0 || res.Format != FormatTokenledger {
		t.Errorf("after Reset the file holds %+v (err %v), want an empty tokenledger file", res, err)
	}
	if _, err := s.Add(context.Background(), storetest.Batch(after)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path, Options{})
	defer s.Close()
	sameDays(t, "after Reset and restart", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, after))
}

// fixtureDir is the fixture of the original service's format (a copy of ../shared/testdata/original-format).
const fixtureDir = "../../testdata/original-format"

// expectedFixture is ../shared/testdata/original-format/expected.json.
type expectedFixture struct {
	Records        int                                  `json:"records"`
	Migrated       int                                  `json:"migrated"`
	SkippedExpired int                                  `json:"skippedExpired"`
	SkippedInvalid int                                  `json:"skippedInvalid"`
	Duplicates     int                                  `json:"duplicates"`
	Stats          map[string]json.RawMessage           `json:"stats"`
	Days           map[tokenledger.Date]json.RawMessage `json:"days"`
}

// TestOriginalFormatFixture loads the original service's file and gets
// exactly the expected days and stats; the first write converts it to
// our format and keeps the original byte for byte.
func TestOriginalFormatFixture(t *testing.T) {
	original, err := os.ReadFile(filepath.Join(fixtureDir, "token_usage.json"))
	if err != nil {
		t.Fatalf("the shared fixture is missing: %v", err)
	}
	var want expectedFixture
	if err := json.Unmarshal(readFile(t, filepath.Join(fixtureDir, "expected.json")), &want); err != nil {
		t.Fatal(err)
	}
	path := tempPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, original, 0o644); err != nil {
		t.Fatal(err)
	}

	// Scan (what the migration uses) counts like expected.json.
	var scanned int
	res, err := Scan(path, ScanOptions{Now: clockAt(fixedNow), RetentionDays: 90}, func(evs []tokenledger.Event) error {
		scanned += len(evs)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != FormatOriginal || res.Records != want.Records || res.Valid != want.Migrated || scanned != want.Migrated ||
		res.Expired != want.SkippedExpired || res.Invalid != want.SkippedInvalid || res.Duplicates != want.Duplicates {
		t.Errorf("Scan = %+v (fn got %d events), want format original, records %d, valid %d, expired %d, invalid %d, duplicates %d",
			res, scanned, want.Records, want.Migrated, want.SkippedExpired, want.SkippedInvalid, want.Duplicates)
	}

	var logs logBuffer
	s := mustOpen(t, path, Options{RetentionDays: 90, Logger: logs.logger()})
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	// Each invalid record is named in a warning: index, id and reason.
	var warnings []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "invalid record") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != want.SkippedInvalid {
		t.Errorf("%d warnings about invalid records, want %d:\n%s", len(warnings), want.SkippedInvalid, logs.String())
	}
	for _, w := range []struct{ index, id, reason string }{
		{"801", "token_2_5fu218hhi", "model is required"},
		{"1202", "token_1_xtl774be6", "tokensUsed must be an integer"},
	} {
		if !strings.Contains(logs.String(), "index="+w.index+" id="+w.id+" reason=\""+w.reason) {
			t.Errorf("no warning naming index %s, id %s and reason %q in:\n%s", w.index, w.id, w.reason, logs.String())
		}
	}

	days := allDays(t, s, fixedNow, 90)
	checkExpectedDays(t, days, want)

	// Opening changed nothing.
	if got := readFile(t, path); string(got) != string(original) {
		t.Fatal("Open changed the original file before any write")
	}

	// The first write converts the file and keeps the original.
	extra := tokenledger.Event{ID: "after-migration", Timestamp: fixedNow, Model: "gpt-4o", UserID: "user_000", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}
	if r, err := s.Add(context.Background(), storetest.Batch([]tokenledger.Event{extra})); err != nil || r.Accepted() != 1 {
		t.Fatalf("Add after loading: accepted %d, err %v", r.Accepted(), err)
	}
	backups, _ := filepath.Glob(path + ".original-*.json")
	if len(backups) != 1 {
		t.Fatalf("backups of the original: %v, want one", backups)
	}
	if got := readFile(t, backups[0]); string(got) != string(original) {
		t.Errorf("the backup %s is not the original byte for byte", backups[0])
	}
	if r, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil }); err != nil || r.Format != FormatTokenledger || r.Valid != want.Migrated+1 {
		t.Errorf("after the first write the file scans as %+v (err %v), want the tokenledger format with %d events", r, err, want.Migrated+1)
	}
	days = allDays(t, s, fixedNow, 90)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true

	s2 := mustOpen(t, path, Options{RetentionDays: 90})
	defer s2.Close()
	sameDays(t, "after conversion and restart", allDays(t, s2, fixedNow, 90), days)
	// The converted file holds the ids: the original's records are
	// duplicates now.
	var again []tokenledger.Event
	if _, err := Scan(backups[0], ScanOptions{Now: clockAt(fixedNow)}, func(evs []tokenledger.Event) error {
		again = append(again, evs...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r, err := s2.Add(context.Background(), storetest.Batch(again)); err != nil || r.Accepted() != 0 {
		t.Errorf("re-adding the original's events after conversion accepted %d (err %v), want 0", r.Accepted(), err)
	}
}

// checkExpectedDays compares every field present in expected.json with
// the store's days, and the stats.
func checkExpectedDays(t *testing.T, days []tokenledger.Day, want expectedFixture) {
	t.Helper()
	got := map[tokenledger.Date]tokenledger.Day{}
	for _, d := range days {
		got[d.Date] = d
	}
	if len(got) != len(want.Days) {
		t.Errorf("%d days, want %d", len(got), len(want.Days))
	}
	dates := make([]string, 0, len(want.Days))
	for d := range want.Days {
		dates = append(dates, string(d))
	}
	sort.Strings(dates)
	for _, ds := range dates {
		d := tokenledger.Date(ds)
		g, ok := got[d]
		if !ok {
			t.Errorf("day %s is missing", d)
			continue
		}
		g.Users = nil
		gj, _ := json.Marshal(g)
		var gm map[string]any
		var wm map[string]any
		_ = json.Unmarshal(gj, &gm)
		_ = json.Unmarshal(want.Days[d], &wm)
		if path, ok := subset(wm, gm, ds); !ok {
			t.Errorf("day %s differs at %s:\n got  %s\n want %s", d, path, gj, want.Days[d])
		}
	}
	stats := tokenledger.ComputeStats(days)
	sj, _ := json.Marshal(stats)
	var sm map[string]any
	_ = json.Unmarshal(sj, &sm)
	for k, raw := range want.Stats {
		var w any
		_ = json.Unmarshal(raw, &w)
		if !reflect.DeepEqual(sm[k], w) {
			t.Errorf("stats %s = %v, want %v", k, sm[k], w)
		}
	}
}

// subset reports whether every field of want is in got with the same
// value, and names the first that is not.
func subset(want, got any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		if strings.HasSuffix(path, ".models") && len(g) != len(w) {
			return path + " (number of models)", false
		}
		for k, v := range w {
			if p, ok := subset(v, g[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	default:
		return path, reflect.DeepEqual(want, got)
	}
}
