package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// waitCompaction waits for the background compaction running now, if any.
func waitCompaction(s *Store) {
	s.smu.Lock()
	done := s.compactDone
	s.smu.Unlock()
	if done != nil {
		<-done
	}
}

// movingClock is a clock tests can move forward.
type movingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *movingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *movingClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fileDays returns the dates physically in the usage file, with their
// event counts, whatever their age.
func fileDays(t *testing.T, path string) map[tokenledger.Date]int {
	t.Helper()
	snap, err := openSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.close()
	if snap.kind != kindOurs {
		t.Fatalf("%s is not in our format", path)
	}
	out := map[tokenledger.Date]int{}
	if err := snap.eachDay(func(d tokenledger.Date, evs []tokenledger.Event) error {
		out[d] = len(evs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompactionDropsExpiredDays: compaction (here at Close) leaves out
// the days that fell out of the retention window, and the folded journal
// is removed.
func TestCompactionDropsExpiredDays(t *testing.T) {
	const R = 5
	clock := &movingClock{now: fixedNow}
	path := tempPath(t)
	s := mustOpen(t, path, Options{Now: clock.Now, RetentionDays: R})
	var evs []tokenledger.Event
	for i := range 120 {
		evs = append(evs, testEvent("x", i, R+1, fixedNow)) // today − 5 … today
	}
	if _, err := s.Add(context.Background(), storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(fileDays(t, path)); got != R+1 {
		t.Fatalf("the file holds %d days, want %d", got, R+1)
	}

	clock.add(3 * 24 * time.Hour) // today − 5 … today − 3 are now expired
	s = mustOpen(t, path, Options{Now: clock.Now, RetentionDays: R})
	later := testEvent("later", 1, 1, clock.Now())
	if _, err := s.Add(context.Background(), storetest.Batch([]tokenledger.Event{later})); err != nil {
		t.Fatal(err)
	}
	want := referenceDays(t, clock.Now(), R, evs, []tokenledger.Event{later})
	sameDays(t, "before compaction", allDays(t, s, clock.Now(), R), want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	oldest := tokenledger.DateOf(clock.Now()).AddDays(-R)
	days := fileDays(t, path)
	for d := range days {
		if d < oldest {
			t.Errorf("the file still holds %s, older than the window (oldest day kept %s)", d, oldest)
		}
	}
	if len(days) != len(want) {
		t.Errorf("the file holds %d days, want %d", len(days), len(want))
	}
	if j, _ := listJournals(path); len(j) != 0 {
		t.Errorf("journals left after compaction: %v", j)
	}
	s = mustOpen(t, path, Options{Now: clock.Now, RetentionDays: R})
	sameDays(t, "after compaction", allDays(t, s, clock.Now(), R), want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A day later, without any write, Close still drops the day that
	// left the window.
	clock.add(24 * time.Hour)
	s = mustOpen(t, path, Options{Now: clock.Now, RetentionDays: R})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(fileDays(t, path)); got != len(want)-1 {
		t.Errorf("a day later the file holds %d days, want %d", got, len(want)-1)
	}
}

// TestBackgroundCompaction: with writers running, compaction folds the
// journal into the file and removes the folded journals, and nothing is
// lost or counted twice.
func TestBackgroundCompaction(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{CompactBytes: 8 << 10})
	var evs []tokenledger.Event
	for i := range 2000 {
		evs = append(evs, testEvent("bg", i, 4, fixedNow))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * 5; i < len(evs); i += 20 {
				if _, err := s.Add(context.Background(), storetest.Batch(evs[i:i+5])); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitCompaction(s)
	s.wmu.Lock()
	s.smu.Lock()
	folded, seq := s.folded, s.seq
	s.smu.Unlock()
	s.wmu.Unlock()
	if folded < 3 {
		t.Errorf("only %d journals were folded; compaction did not run in the background", folded)
	}
	journals, _ := listJournals(path)
	for _, j := range journals {
		if j.seq <= folded {
			t.Errorf("journal %s was folded into the file but not removed", j.path)
		}
		if j.seq != seq {
			t.Errorf("journal %s is neither folded nor the active one (%d)", j.path, seq)
		}
	}
	want := referenceDays(t, fixedNow, 90, evs)
	sameDays(t, "while running", allDays(t, s, fixedNow, 90), want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path, Options{})
	defer s.Close()
	sameDays(t, "after restart", allDays(t, s, fixedNow, 90), want)
}

// TestCompactionInChunks: when the journals hold more events than a
// compaction may keep in memory, they are merged day range by day range;
// the result is the same.
func TestCompactionInChunks(t *testing.T) {
	path := tempPath(t)
	o := Options{chunkEvents: 7, CompactBytes: 3000}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []tokenledger.Event
	for round := range 3 {
		s := mustOpen(t, path, o)
		for i := range 150 {
			e := testEvent(fmt.Sprintf("ch%d", round), i, 1, fixedNow)
			e.Timestamp = fixedNow.Add(-time.Duration(rng.IntN(20*24)) * time.Hour) // any of 20 days, in random order
			all = append(all, e)
			if _, err := s.Add(context.Background(), storetest.Batch([]tokenledger.Event{e})); err != nil {
				t.Fatal(err)
			}
		}
		// The same ids again, on the same days: duplicates.
		if r, err := s.Add(context.Background(), storetest.Batch(all[len(all)-150:])); err != nil || r.Accepted() != 0 {
			t.Fatalf("re-adding: accepted %d, err %v", r.Accepted(), err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := mustOpen(t, path, o)
	defer s.Close()
	sameDays(t, "after chunked compactions", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, all))
	total := 0
	for _, n := range fileDays(t, path) {
		total += n
	}
	if total != len(all) {
		t.Errorf("the file holds %d events, want %d", total, len(all))
	}
}

// TestCrashLeftovers: what a crash between the steps of a compaction can
// leave — a journal already folded into the file, an unfinished temp file
// — is recognised at Open: nothing counts twice and the leftovers go.
func TestCrashLeftovers(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	evs := noCloseEvents()
	if _, err := s.Add(context.Background(), storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	journals, _ := listJournals(path)
	if len(journals) != 1 {
		t.Fatalf("journals %v, want one", journals)
	}
	journal := readFile(t, journals[0].path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As if the crash came after the rename, before the journal was
	// removed, while another compaction was writing its temp file.
	writeFile(t, journals[0].path, journal)
	tmp := filepath.Join(filepath.Dir(path), "token_usage.json.tmp-123")
	writeFile(t, tmp, []byte("{\n  \"format\": \"tokenledger\",\n  \"days\": [\n    {\"da"))

	res, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil })
	if err != nil || res.Duplicates != 0 || res.Valid != len(evs) {
		t.Errorf("Scan with a folded journal left behind: %+v, err %v; want %d events, no duplicates", res, err, len(evs))
	}
	s = mustOpen(t, path, Options{})
	defer s.Close()
	sameDays(t, "with leftovers", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, evs))
	if _, err := os.Stat(journals[0].path); !os.IsNotExist(err) {
		t.Errorf("the folded journal was not removed at Open")
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("the temp file was not removed at Open")
	}
}

// TestFileIsReadable: the file is indented JSON with one event per line,
// a summary per day and the header of docs/file-format.md.
func TestFileIsReadable(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	evs := []tokenledger.Event{
		{ID: "e1", Timestamp: fixedNow, Model: "gpt-4o", UserID: "alice", PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120, Cost: 1_500_000},
		{ID: "e2", Timestamp: fixedNow.Add(-time.Hour), Model: "claude \"sonnet\"", SessionID: "s1", PromptTokens: 7, TotalTokens: 7,
			Metadata: json.RawMessage(`{"secret":"not stored"}`)},
	}
	if _, err := s.Add(context.Background(), storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data := string(readFile(t, path))
	for _, want := range []string{
		"{\n  \"format\": \"tokenledger\",\n  \"version\": 1,\n",
		"\n      \"date\": \"2026-11-27\",\n      \"summary\": {\"totalTokens\":127,",
		"\n        {\"id\":\"e1\",\"timestamp\":\"2026-11-27T12:00:00Z\",\"model\":\"gpt-4o\",\"userId\":\"alice\",\"promptTokens\":100,\"completionTokens\":20,\"totalTokens\":120,\"costUsd\":0.0015}",
		`"model":"claude \"sonnet\""`,
	} {
		if !strings.Contains(data, want) {
			t.Errorf("the file does not contain %q:\n%s", want, data)
		}
	}
	if strings.Contains(data, "secret") {
		t.Error("metadata was stored")
	}
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Errorf("the file is not valid JSON: %v", err)
	}
	if st, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o644 {
		t.Errorf("the file's mode is %v, want -rw-r--r--", st.Mode())
	}
}

// TestSummaryIsInformational: a summary edited by hand changes nothing;
// the days are recomputed from the events.
func TestSummaryIsInformational(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	evs := noCloseEvents()
	if _, err := s.Add(context.Background(), storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data := string(readFile(t, path))
	edited := strings.Replace(data, `"summary": {"totalTokens":`, `"summary": {"totalTokens":999999999,"x":`, 1)
	if edited == data {
		t.Fatal("no summary found to edit")
	}
	writeFile(t, path, []byte(edited))
	s = mustOpen(t, path, Options{})
	defer s.Close()
	sameDays(t, "with an edited summary", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, evs))
}

// TestEventCodec: the hand-written encoder gives JSON that encoding/json
// reads back as the same event, for awkward strings and exact costs.
func TestEventCodec(t *testing.T) {
	evs := []tokenledger.Event{
		{ID: `a"b\c`, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), Model: "m \"q\" \\ ünï €", Provider: "p",
			UserID: "u\u2028", SessionID: "s", PromptTokens: 1<<40 - 10, CompletionTokens: 3, CacheReadTokens: 1, CacheWriteTokens: 2,
			ReasoningTokens: 3, TotalTokens: 1 << 40, Cost: 1},
		{ID: "z", Timestamp: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Model: "x", TotalTokens: 0, Cost: tokenledger.MaxEventCost},
		{ID: "c", Timestamp: fixedNow, Model: "x", Cost: 120_000_000_000},
	}
	for _, e := range evs {
		b := appendEvent(nil, &e)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %s", b)
		}
		var std tokenledger.Event
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", b, err)
		}
		var w storedEvent
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		got, reason := w.event()
		if reason != "" {
			t.Fatalf("%s: %s", b, reason)
		}
		if !reflect.DeepEqual(std, e) || !reflect.DeepEqual(got, e) {
			t.Errorf("round trip of %+v:\n json %s\n std  %+v\n ours %+v", e, b, std, got)
		}
	}
	for _, s := range []string{"0", "1", "0.1", "0.000000001", "12.5", "1000000", "0.0000000005", "1e-3", "2.5E+2", "0.1234567894", "1000000.000000001"} {
		want, werr := tokenledger.ParseDollars(s)
		got, gerr := parseCost(s)
		if got != want || (werr == nil) != (gerr == nil) {
			t.Errorf("parseCost(%q) = %v, %v; ParseDollars gives %v, %v", s, got, gerr, want, werr)
		}
	}
}

// TestWriteFile: a file written by WriteFile opens as exactly the days of
// its events, and WriteFile refuses a path that exists, leaving it as it
// was.
func TestWriteFile(t *testing.T) {
	now := fixedNow
	byDay := map[tokenledger.Date][]tokenledger.Event{}
	var evs []tokenledger.Event
	for n := range 300 {
		e := testEvent("wf", n, 7, now)
		evs = append(evs, e)
		byDay[tokenledger.DateOf(e.Timestamp)] = append(byDay[tokenledger.DateOf(e.Timestamp)], e)
	}
	days := func(yield func(tokenledger.Date, []tokenledger.Event) bool) {
		for _, d := range slices.Sorted(maps.Keys(byDay)) {
			if !yield(d, byDay[d]) {
				return
			}
		}
	}
	path := filepath.Join(t.TempDir(), "token_usage.json")
	if err := WriteFile(path, now, days); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	err := WriteFile(path, now, days)
	if err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("WriteFile over an existing file: %v; want a refusal", err)
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Fatal("WriteFile changed the existing file it refused")
	}

	s := mustOpen(t, path, Options{})
	defer s.Close()
	r := tokenledger.DefaultRetentionDays
	sameDays(t, "the written file", allDays(t, s, now, r), referenceDays(t, now, r, evs))
}
