package filestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// The conformance suite on version 2, with checkpoints at close only and
// checkpoints throughout.
func TestConformanceVersion2(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store {
		return mustOpen(t, tempPath(t), Options{Now: o.Now, RetentionDays: o.RetentionDays, Version: 2})
	})
}

func TestConformanceVersion2CheckpointingOften(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store {
		return mustOpen(t, tempPath(t), Options{Now: o.Now, RetentionDays: o.RetentionDays, Version: 2, CompactBytes: 64 << 10})
	})
}

// v2Events returns n test events over 30 days.
func v2Events(prefix string, n int) []tokenledger.Event {
	evs := make([]tokenledger.Event, n)
	for i := range evs {
		evs[i] = testEvent(prefix, i, 30, fixedNow)
	}
	return evs
}

// A version 2 store reopens as the same days, ids stay counted once across
// restarts (sealed in an index or only in a journal), and reopening
// without Version set keeps version 2.
func TestVersion2Restart(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	a, b := v2Events("a", 500), v2Events("b", 200)
	s := mustOpen(t, path, Options{Version: 2, CompactBytes: 8 << 10})
	if _, err := s.Add(ctx, storetest.Batch(a)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !isVersion2(path) {
		t.Fatal("the file is not version 2 after a clean stop")
	}
	s = mustOpen(t, path, Options{})
	if s.kind != kindV2 {
		t.Fatalf("reopened as kind %v, want version 2", s.kind)
	}
	sameDays(t, "reopened", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, a))
	r, err := s.Add(ctx, storetest.Batch(append(a[:50:50], b...)))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range r.New {
		if n != (i >= 50) {
			t.Fatalf("event %d: new = %v after a restart", i, n)
		}
	}
	// No clean stop: b is only in the journal.
	s.closed.Store(true)
	s.lock.Close()
	s = mustOpen(t, path, Options{})
	defer s.Close()
	sameDays(t, "after a crash", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, a, b))
	if r, err := s.Add(ctx, storetest.Batch(b[:1])); err != nil || r.New[0] {
		t.Fatalf("an id replayed from the journal counted again: %v %v", r.New, err)
	}
}

// A version 1 file migrates on its first open with Version 2: the same
// days, the version 1 file kept byte for byte, Scan yielding each event
// once; and a clean stop after a small write then writes a small index,
// not the history.
func TestVersion2MigratesVersion1(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	a, b := v2Events("a", 3000), v2Events("b", 100)
	s := mustOpen(t, path, Options{})
	s.Add(ctx, storetest.Batch(a[:2000]))
	s.Close()
	s = mustOpen(t, path, Options{})
	s.Add(ctx, storetest.Batch(a[2000:])) // left in a journal, unfolded
	s.closed.Store(true)
	s.lock.Close()
	v1 := readFile(t, path)

	s = mustOpen(t, path, Options{Version: 2})
	if !isVersion2(path) {
		t.Fatal("the file was not migrated")
	}
	backups, _ := filepath.Glob(path + ".v1-*.json")
	if len(backups) != 1 || string(readFile(t, backups[0])) != string(v1) {
		t.Fatalf("backups %v; want one, byte for byte the version 1 file", backups)
	}
	sameDays(t, "migrated", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, a))
	if _, err := s.Add(ctx, storetest.Batch(b)); err != nil {
		t.Fatal(err)
	}
	before := snapshotFiles(t, filepath.Dir(path))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := snapshotFiles(t, filepath.Dir(path))
	var newIndex string
	for name, content := range after {
		if strings.Contains(name, ".index-") && before[name] == "" {
			newIndex = content
		}
		if strings.Contains(name, ".journal-") && before[name] != "" && before[name] != content {
			t.Errorf("a clean stop rewrote the segment %s", name)
		}
	}
	if newIndex == "" || len(newIndex) > 100*len(b) {
		t.Errorf("the clean stop's new index is %d bytes for %d new events; want one, in proportion", len(newIndex), len(b))
	}

	var got []tokenledger.Event
	res, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func(evs []tokenledger.Event) error {
		got = append(got, evs...)
		return nil
	})
	if err != nil || res.Valid != len(a)+len(b) || len(got) != len(a)+len(b) {
		t.Fatalf("Scan: %d events (%+v), %v; want %d", len(got), res, err, len(a)+len(b))
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("Scan yielded %s twice", e.ID)
		}
		seen[e.ID] = true
	}
	r := mustOpen(t, path, Options{})
	defer r.Close()
	sameDays(t, "reopened", allDays(t, r, fixedNow, 90), referenceDays(t, fixedNow, 90, a, b))
}

// Reset and retention on version 2: after Reset nothing comes back; days
// that leave the window are dropped, and a checkpoint whose days all left
// it is removed with its journals.
func TestVersion2ResetAndRetention(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	s := mustOpen(t, path, Options{Version: 2})
	s.Add(ctx, storetest.Batch(v2Events("a", 100)))
	s.Close()
	s = mustOpen(t, path, Options{})
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, path, Options{})
	if d := allDays(t, s, fixedNow, 90); len(d) != 0 {
		t.Fatalf("%d days after Reset", len(d))
	}
	old := v2Events("o", 50) // up to 29 days old
	s.Add(ctx, storetest.Batch(old))
	s.Close()
	later := fixedNow.AddDate(0, 0, 40)
	s = mustOpen(t, path, Options{Now: clockAt(later), RetentionDays: 20})
	if d := allDays(t, s, later, 20); len(d) != 0 {
		t.Fatalf("%d days kept beyond the window", len(d))
	}
	s.Close()
	if idx, _ := filepath.Glob(path + ".index-*"); len(idx) != 0 {
		t.Errorf("indexes of expired checkpoints are left: %v", idx)
	}
	if j, _ := filepath.Glob(path + ".journal-*"); len(j) != 0 {
		t.Errorf("journals of expired checkpoints are left: %v", j)
	}
}

// A damaged id index or snapshot is refused with one sentence naming the
// file and offset, changing nothing; Repair moves the snapshot aside and
// the store rebuilds from the journals.
func TestVersion2Damage(t *testing.T) {
	ctx := context.Background()
	for _, target := range []string{"index", "snapshot"} {
		t.Run(target, func(t *testing.T) {
			path := tempPath(t)
			a := v2Events("a", 300)
			s := mustOpen(t, path, Options{Version: 2})
			s.Add(ctx, storetest.Batch(a))
			s.Close()
			name := path
			if target == "index" {
				idx, _ := filepath.Glob(path + ".index-*")
				name = idx[0]
			}
			b := readFile(t, name)
			b[len(b)/2] ^= 0x40
			os.WriteFile(name, b, 0o644)
			before := snapshotFiles(t, filepath.Dir(path))
			_, err := Open(path, Options{Now: clockAt(fixedNow), Logger: discard})
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != name || !strings.Contains(err.Error(), "byte") {
				t.Fatalf("Open of a damaged %s: %v; want a *CorruptError naming %s and an offset", target, err, name)
			}
			if after := snapshotFiles(t, filepath.Dir(path)); len(after) != len(before) {
				t.Fatalf("a refused open changed the files: %d before, %d after", len(before), len(after))
			}
			if _, err := Repair(path); err != nil {
				t.Fatal(err)
			}
			r := mustOpen(t, path, Options{Version: 2})
			defer r.Close()
			sameDays(t, "rebuilt", allDays(t, r, fixedNow, 90), referenceDays(t, fixedNow, 90, a))
		})
	}
}

// TestCrashRecoveryVersion2 is TestCrashRecovery on version 2: kills at
// seeded random moments and, every fourth round, in the middle of a
// snapshot (TOKENLEDGER_CRASH_SEED replays a run).
func TestCrashRecoveryVersion2(t *testing.T) { crashRecovery(t, 2) }

// stopAtSnapshot is the crash child's snapshotHook: it says it has reached
// the snapshot's rename and waits there to be killed.
func stopAtSnapshot(context.Context) error {
	os.Stdout.WriteString("snapshot-hook ;\n")
	select {}
}
