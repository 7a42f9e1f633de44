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

// A journal segment or an id index that a checkpoint names and that is
// gone is refused by Open, Scan and Repair's check alike with one sentence
// naming it, changing nothing; Repair then moves the snapshot aside and the
// store rebuilds from the journals that remain.
func TestVersion2MissingFile(t *testing.T) {
	ctx := context.Background()
	for _, target := range []string{"segment", "index"} {
		t.Run(target, func(t *testing.T) {
			path := tempPath(t)
			a := v2Events("a", 600)
			s := mustOpen(t, path, Options{Version: 2, CompactBytes: 4096})
			for i := 0; i < len(a); i += 100 {
				if _, err := s.Add(ctx, storetest.Batch(a[i:i+100])); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			glob := ".journal-*"
			if target == "index" {
				glob = ".index-*"
			}
			names, _ := filepath.Glob(path + glob)
			if len(names) < 3 {
				t.Fatalf("%d files match %s; the test needs several checkpoints", len(names), glob)
			}
			gone := names[len(names)/2]
			lost := map[string]bool{}
			if target == "segment" {
				f, err := os.Open(gone)
				if err != nil {
					t.Fatal(err)
				}
				_, err = readJournal(gone, f, false, func(evs []tokenledger.Event) error {
					for _, e := range evs {
						lost[e.ID] = true
					}
					return nil
				})
				f.Close()
				if err != nil || len(lost) == 0 {
					t.Fatalf("reading %s: %d events, %v", gone, len(lost), err)
				}
			}
			if err := os.Remove(gone); err != nil {
				t.Fatal(err)
			}
			before := snapshotFiles(t, filepath.Dir(path))

			_, err := Open(path, Options{Now: clockAt(fixedNow), Logger: discard})
			var me *MissingError
			if !errors.As(err, &me) || me.Missing != gone || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v; want a *MissingError naming %s", err, gone)
			}
			for _, want := range []string{gone, "missing", "--repair"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the refusal %q does not mention %q", err, want)
				}
			}
			_, err = Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil })
			if !errors.As(err, &me) || me.Missing != gone {
				t.Errorf("Scan: %v; want a *MissingError naming %s", err, gone)
			}
			if after := snapshotFiles(t, filepath.Dir(path)); !equalFiles(before, after) {
				t.Fatalf("refusing changed the files:\n before %v\n after  %v", keys(before), keys(after))
			}

			moved, err := Repair(path)
			if err != nil || len(moved) != 1 || !strings.HasPrefix(moved[0], path+".corrupt-") {
				t.Fatalf("Repair moved %v (%v); want the snapshot moved aside", moved, err)
			}
			var kept []tokenledger.Event
			for _, e := range a {
				if !lost[e.ID] {
					kept = append(kept, e)
				}
			}
			r := mustOpen(t, path, Options{Version: 2})
			defer r.Close()
			sameDays(t, "rebuilt", allDays(t, r, fixedNow, 90), referenceDays(t, fixedNow, 90, kept))
		})
	}
}

// A healthy version 2 store, several checkpoints of it, is not repaired:
// the presence check finds every file.
func TestVersion2RepairLeavesHealthyStore(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{Version: 2, CompactBytes: 4096})
	for i := range 4 {
		if _, err := s.Add(context.Background(), storetest.Batch(v2Events(string(rune('a'+i)), 100))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if _, err := Repair(path); !errors.Is(err, ErrNothingToRepair) {
		t.Fatalf("Repair of a healthy store: %v", err)
	}
}
