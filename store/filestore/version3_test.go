package filestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// dayFilesOf returns the day files on disk of the usage file at path.
func dayFilesOf(t *testing.T, path string) []string {
	t.Helper()
	names, err := filepath.Glob(path + ".day-*")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A clean stop after one event rewrites that event's day file only: the
// other days' files stay as they were, byte for byte, and the bytes
// written are the manifest, one day, and the small index.
func TestVersion3CleanStopWritesTheChangedDay(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	a := v2Events("a", 3000)
	s := mustOpen(t, path, Options{Version: 2})
	if _, err := s.Add(ctx, storetest.Batch(a)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	days := dayFilesOf(t, path)
	if len(days) != 30 {
		t.Fatalf("%d day files after events over 30 days, want 30", len(days))
	}
	s = mustOpen(t, path, Options{Version: 2})
	one := testEvent("one", 7, 30, fixedNow)
	if _, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{one})); err != nil {
		t.Fatal(err)
	}
	before := snapshotFiles(t, filepath.Dir(path))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := snapshotFiles(t, filepath.Dir(path))
	var added, removed []string
	for name := range after {
		if _, ok := before[name]; !ok && strings.Contains(name, ".day-") {
			added = append(added, name)
		}
	}
	for name, content := range before {
		if !strings.Contains(name, ".day-") {
			continue
		}
		if now, ok := after[name]; !ok {
			removed = append(removed, name)
		} else if now != content {
			t.Errorf("day file %s was rewritten in place", name)
		}
	}
	want := string(one.Day())
	if len(added) != 1 || len(removed) != 1 || !strings.Contains(added[0], want) || !strings.Contains(removed[0], want) {
		t.Fatalf("a clean stop after one event on %s added day files %v and removed %v; want that day's file replaced", want, added, removed)
	}
	if len(dayFilesOf(t, path)) != 30 {
		t.Errorf("%d day files after the stop, want 30", len(dayFilesOf(t, path)))
	}
	r := mustOpen(t, path, Options{Version: 2})
	defer r.Close()
	sameDays(t, "reopened", allDays(t, r, fixedNow, 90), referenceDays(t, fixedNow, 90, a, []tokenledger.Event{one}))
}

// toVersion2 rewrites the closed version 3 store at path as the first
// version 2 layout wrote it: the aggregates inline in the usage file, no
// day files.
func toVersion2(t *testing.T, path string) {
	t.Helper()
	snap, err := readSnapshot2(path, "")
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]day2, len(snap.days))
	for i, st := range snap.days {
		lines[i] = toDay2(st)
	}
	h := snap.header2
	h.Version, h.Generation = formatVersion2, 0
	if _, err := writeSnapshot2(path, h, lines, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range dayFilesOf(t, path) {
		os.Remove(name)
	}
}

// A store in the first version 2 layout opens unchanged, Scan reads it,
// and its first checkpoint makes it version 3 with every day in a day
// file, losing nothing.
func TestVersion3MigratesVersion2(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	a, b := v2Events("a", 1000), v2Events("b", 10)
	s := mustOpen(t, path, Options{Version: 2})
	s.Add(ctx, storetest.Batch(a))
	s.Close()
	toVersion2(t, path)
	v2 := readFile(t, path)

	var n int
	if _, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func(evs []tokenledger.Event) error { n += len(evs); return nil }); err != nil || n != len(a) {
		t.Fatalf("Scan of a version 2 store: %d events, %v; want %d", n, err, len(a))
	}
	s = mustOpen(t, path, Options{Version: 2})
	sameDays(t, "version 2 opened", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, a))
	if string(readFile(t, path)) != string(v2) || len(dayFilesOf(t, path)) != 0 {
		t.Fatal("opening a version 2 store changed it")
	}
	s.Add(ctx, storetest.Batch(b))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	snap, err := readSnapshot2(path, "")
	if err != nil || snap.Version != formatVersion3 || len(dayFilesOf(t, path)) != 30 {
		t.Fatalf("after the first checkpoint: version %v, %d day files, %v; want version 3 and 30", snap, len(dayFilesOf(t, path)), err)
	}
	s = mustOpen(t, path, Options{Version: 2})
	defer s.Close()
	sameDays(t, "migrated to version 3", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, a, b))
}

// Retention drops the day files of expired days and Reset all of them.
func TestVersion3DayFilesRetentionAndReset(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	s := mustOpen(t, path, Options{Version: 2})
	s.Add(ctx, storetest.Batch(v2Events("a", 300))) // 30 days, up to 29 days old
	s.Close()
	later := fixedNow.AddDate(0, 0, 10)
	s = mustOpen(t, path, Options{Now: clockAt(later), RetentionDays: 25, Version: 2})
	s.Close()
	oldest := tokenledger.DateOf(later).AddDays(-25)
	names := dayFilesOf(t, path)
	for _, name := range names {
		if d := tokenledger.Date(strings.TrimPrefix(name, path+".day-")[:10]); d < oldest {
			t.Errorf("day file %s is left after its day expired", name)
		}
	}
	if want := len(allDaysAt(t, path, later, 25)); len(names) != want {
		t.Errorf("%d day files for %d days in the window", len(names), want)
	}
	s = mustOpen(t, path, Options{Now: clockAt(later), RetentionDays: 25, Version: 2})
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if names := dayFilesOf(t, path); len(names) != 0 {
		t.Errorf("day files left after Reset: %v", names)
	}
}

// allDaysAt opens the store at path at now and returns its days.
func allDaysAt(t *testing.T, path string, now time.Time, retention int) []tokenledger.Day {
	s := mustOpen(t, path, Options{Now: clockAt(now), RetentionDays: retention, Version: 2})
	defer s.Close()
	return allDays(t, s, now, retention)
}

// A damaged day file is refused naming it and a missing one as missing,
// changing nothing; Repair moves the manifest aside and the store
// rebuilds from the journals, losing nothing.
func TestVersion3DamagedOrMissingDayFile(t *testing.T) {
	ctx := context.Background()
	for _, damage := range []string{"damaged", "missing"} {
		t.Run(damage, func(t *testing.T) {
			path := tempPath(t)
			a := v2Events("a", 300)
			s := mustOpen(t, path, Options{Version: 2})
			s.Add(ctx, storetest.Batch(a))
			s.Close()
			name := dayFilesOf(t, path)[10]
			if damage == "missing" {
				os.Remove(name)
			} else {
				b := readFile(t, name)
				b[len(b)/2] ^= 0x40
				os.WriteFile(name, b, 0o644)
			}
			before := snapshotFiles(t, filepath.Dir(path))
			_, err := Open(path, Options{Now: clockAt(fixedNow), Logger: discard})
			var me *MissingError
			var ce *CorruptError
			switch {
			case damage == "missing" && (!errors.As(err, &me) || me.Missing != name):
				t.Fatalf("Open: %v; want a *MissingError naming %s", err, name)
			case damage == "damaged" && (!errors.As(err, &ce) || ce.Path != name):
				t.Fatalf("Open: %v; want a *CorruptError naming %s", err, name)
			}
			if _, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil }); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Scan: %v; want the same refusal", err)
			}
			if after := snapshotFiles(t, filepath.Dir(path)); !equalFiles(before, after) {
				t.Fatalf("refusing changed the files")
			}
			if moved, err := Repair(path); err != nil || len(moved) != 1 || !strings.HasPrefix(moved[0], path+".corrupt-") {
				t.Fatalf("Repair moved %v (%v); want the manifest moved aside", moved, err)
			}
			r := mustOpen(t, path, Options{Version: 2})
			defer r.Close()
			sameDays(t, "rebuilt", allDays(t, r, fixedNow, 90), referenceDays(t, fixedNow, 90, a))
		})
	}
}

// A manifest whose day line names no day file it can have written, or a
// day file that holds another day, is refused naming the file at fault.
func TestVersion3HostileReferences(t *testing.T) {
	ctx := context.Background()
	for _, hostile := range []string{"future generation", "other day"} {
		t.Run(hostile, func(t *testing.T) {
			path := tempPath(t)
			s := mustOpen(t, path, Options{Version: 2})
			s.Add(ctx, storetest.Batch(v2Events("a", 100)))
			s.Close()
			snap, err := readSnapshot2(path, "")
			if err != nil {
				t.Fatal(err)
			}
			refs := dayRefs(snap.files)
			fault := path
			if hostile == "future generation" {
				refs[3].Gen = snap.Generation + 1
				if _, err := writeSnapshot2(path, snap.header2, refs, nil); err != nil {
					t.Fatal(err)
				}
			} else {
				fault = dayFileName(path, refs[3].Date, refs[3].Gen)
				other := readFile(t, dayFileName(path, refs[4].Date, refs[4].Gen))
				os.WriteFile(fault, other, 0o644)
			}
			_, err = Open(path, Options{Now: clockAt(fixedNow), Logger: discard})
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != fault {
				t.Fatalf("Open: %v; want a *CorruptError naming %s", err, fault)
			}
		})
	}
}
