package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// healthy builds a usage file with events a (folded into the file by
// Close) and a journal with one line per batch of b, as a process that
// crashed after logging b would leave it. It returns the journal's path.
func healthy(t *testing.T, path string, a []tokenledger.Event, b [][]tokenledger.Event) string {
	t.Helper()
	s := mustOpen(t, path, Options{})
	if _, err := s.Add(context.Background(), storetest.Batch(a)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	snap, err := openSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	snap.close()
	var j []byte
	for _, evs := range b {
		j = appendJournalLine(j, evs)
	}
	journal := journalName(path, snap.folded+1)
	if err := os.WriteFile(journal, j, 0o644); err != nil {
		t.Fatal(err)
	}
	return journal
}

// corruptionEvents returns the events healthy is built from.
func corruptionEvents() (a []tokenledger.Event, b [][]tokenledger.Event) {
	for i := range 30 {
		a = append(a, testEvent("a", i, 3, fixedNow))
	}
	for l := range 3 {
		var line []tokenledger.Event
		for i := range 4 {
			line = append(line, testEvent(fmt.Sprintf("b%d", l), i, 2, fixedNow))
		}
		b = append(b, line)
	}
	return a, b
}

// lineStart returns the byte offset where 1-based line n of data starts.
func lineStart(data []byte, n int) int {
	off := 0
	for range n - 1 {
		off += bytes.IndexByte(data[off:], '\n') + 1
	}
	return off
}

// TestCorruptionIsRefusedAndKept: a damaged file or journal is refused
// with an error naming the file, the byte offset and the line; nothing is
// changed; Repair moves it aside and the store opens again with what can
// still be read.
func TestCorruptionIsRefusedAndKept(t *testing.T) {
	a, b := corruptionEvents()
	flat := func(lines ...[]tokenledger.Event) []tokenledger.Event {
		var out []tokenledger.Event
		for _, l := range lines {
			out = append(out, l...)
		}
		return out
	}
	tests := []struct {
		name string
		// damage breaks the files and returns the file that must be
		// named, the line and the offset (-1: any offset on that line).
		damage func(t *testing.T, path, journal string) (file string, line int, offset int64)
		// after is what the store holds once Repair has run.
		after []tokenledger.Event
	}{
		{
			name: "an event in the file is damaged",
			damage: func(t *testing.T, path, _ string) (string, int, int64) {
				data := readFile(t, path)
				const line = 12 // an event line of the first day
				start := lineStart(data, line)
				i := start + bytes.Index(data[start:], []byte(`"model"`))
				data[i] = '#'
				writeFile(t, path, data)
				return path, line, -1
			},
			after: flat(b...),
		},
		{
			name: "a day's structure is damaged",
			damage: func(t *testing.T, path, _ string) (string, int, int64) {
				data := readFile(t, path)
				i := bytes.LastIndex(data, []byte(`"summary"`))
				data[i] = '#'
				writeFile(t, path, data)
				return path, bytes.Count(data[:i], []byte("\n")) + 1, int64(i)
			},
			after: flat(b...),
		},
		{
			name: "the file is cut short",
			damage: func(t *testing.T, path, _ string) (string, int, int64) {
				data := readFile(t, path)
				data = data[:len(data)/2]
				writeFile(t, path, data)
				return path, bytes.Count(data, []byte("\n")) + 1, int64(len(data))
			},
			after: flat(b...),
		},
		{
			name: "the file is empty",
			damage: func(t *testing.T, path, _ string) (string, int, int64) {
				writeFile(t, path, nil)
				return path, 1, 0
			},
			after: flat(b...),
		},
		{
			name: "an event in the file breaks a rule",
			damage: func(t *testing.T, path, _ string) (string, int, int64) {
				data := readFile(t, path)
				const line = 20
				start := lineStart(data, line)
				i := start + bytes.Index(data[start:], []byte(`"promptTokens":`)) + len(`"promptTokens":`)
				data = append(data[:i:i], append([]byte("-"), data[i:]...)...)
				writeFile(t, path, data)
				return path, line, int64(start + 8) // the event starts after the indentation
			},
			after: flat(b...),
		},
		{
			name: "a journal line in the middle has a bad checksum",
			damage: func(t *testing.T, _, journal string) (string, int, int64) {
				data := readFile(t, journal)
				start := lineStart(data, 2)
				data[start+40] ^= 0x01
				writeFile(t, journal, data)
				return journal, 2, int64(start)
			},
			after: flat(a, b[0], b[2]),
		},
		{
			name: "an older journal ends in an incomplete line",
			damage: func(t *testing.T, path, journal string) (string, int, int64) {
				data := readFile(t, journal)
				cut := lineStart(data, 3) + 30
				writeFile(t, journal, data[:cut])
				// A newer journal follows, so the cut line is not the
				// newest write and cannot be a crash mid-append.
				var seq uint64
				fmt.Sscanf(strings.TrimPrefix(journal, path+journalInfix), "%d", &seq)
				writeFile(t, journalName(path, seq+1), appendJournalLine(nil, []tokenledger.Event{testEvent("newer", 1, 1, fixedNow)}))
				return journal, 3, int64(lineStart(data, 3))
			},
			after: flat(a, b[0], b[1], []tokenledger.Event{testEvent("newer", 1, 1, fixedNow)}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			journal := healthy(t, path, a, b)
			file, line, offset := tc.damage(t, path, journal)
			before := snapshotFiles(t, filepath.Dir(path))

			_, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard})
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Open: err = %v, want a *CorruptError", err)
			}
			if ce.Path != file || ce.Line != line || (offset >= 0 && ce.Offset != offset) {
				t.Errorf("error names %s line %d byte %d, want %s line %d byte %d: %v", ce.Path, ce.Line, ce.Offset, file, line, offset, err)
			}
			if data := readFile(t, file); offset < 0 && (ce.Offset < int64(lineStart(data, line)) || ce.Offset >= int64(lineStart(data, line+1))) {
				t.Errorf("offset %d is not on line %d", ce.Offset, line)
			}
			msg := err.Error()
			for _, want := range []string{file, fmt.Sprintf("byte %d (line %d)", ce.Offset, ce.Line), "a repair moves it aside"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if _, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil }); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Scan: err = %v, want ErrCorrupt", err)
			}
			if after := snapshotFiles(t, filepath.Dir(path)); !equalFiles(before, after) {
				t.Fatalf("refusing to open changed the files:\n before %v\n after  %v", keys(before), keys(after))
			}

			moved, err := Repair(path)
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if len(moved) != 1 || !strings.HasPrefix(moved[0], file+".corrupt-") {
				t.Fatalf("Repair moved %v, want %s.corrupt-<stamp>", moved, file)
			}
			if got := readFile(t, moved[0]); string(got) != before[filepath.Base(file)] {
				t.Errorf("the file moved aside is not the damaged file byte for byte")
			}
			s := mustOpen(t, path, Options{})
			defer s.Close()
			sameDays(t, "after Repair", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, tc.after))
		})
	}
}

func TestRepairRefusesHealthyFiles(t *testing.T) {
	path := tempPath(t)
	a, b := corruptionEvents()
	healthy(t, path, a, b)
	before := snapshotFiles(t, filepath.Dir(path))
	moved, err := Repair(path)
	if !errors.Is(err, ErrNothingToRepair) || len(moved) != 0 {
		t.Fatalf("Repair of healthy files: moved %v, err %v; want nothing moved and ErrNothingToRepair", moved, err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if after := snapshotFiles(t, filepath.Dir(path)); !equalFiles(before, after) {
		t.Fatal("Repair of healthy files changed them")
	}
	// A torn last line is a crash, not corruption: nothing to repair.
	journals, _ := listJournals(path)
	data := readFile(t, journals[0].path)
	writeFile(t, journals[0].path, data[:len(data)-5])
	if _, err := Repair(path); !errors.Is(err, ErrNothingToRepair) {
		t.Errorf("Repair with a torn last journal line: err = %v, want ErrNothingToRepair", err)
	}
}

// TestUnknownVersionIsRefusedNotRepaired: a file of a later version is
// refused as such and left alone by Repair — also when that version has
// header fields this one does not know, before its "version" — while an
// unknown field in a file of this version is damage.
func TestUnknownVersionIsRefusedNotRepaired(t *testing.T) {
	for name, header := range map[string]string{
		"plain":                     `"format": "tokenledger", "version": 2`,
		"new field before version":  `"format": "tokenledger", "compression": "none", "version": 2`,
		"new object before version": `"shards": {"count": 2, "of": [[1], {"a": null}]}, "format": "tokenledger", "version": 2`,
	} {
		t.Run(name, func(t *testing.T) {
			path := tempPath(t)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			data := []byte("{\n  " + header + ",\n  \"days\": []\n}\n")
			writeFile(t, path, data)
			_, err := Open(path, Options{Version: 1, Logger: discard})
			if !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "version 2") {
				t.Fatalf("Open: err = %v, want ErrUnknownVersion naming the file and the version", err)
			}
			if _, err := Repair(path); !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("Repair: err = %v, want ErrUnknownVersion", err)
			}
			if got := readFile(t, path); string(got) != string(data) {
				t.Error("a file of an unknown version was changed")
			}
		})
	}
	for name, header := range map[string]string{
		"unknown field before version": `"format": "tokenledger", "compression": "none", "version": 1`,
		"unknown field after version":  `"format": "tokenledger", "version": 1, "compression": "none"`,
		"deep value before version":    `"format": "tokenledger", "x": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `, "version": 2`,
	} {
		t.Run(name, func(t *testing.T) {
			path := tempPath(t)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, []byte("{\n  "+header+",\n  \"days\": []\n}\n"))
			_, err := Open(path, Options{Version: 1, Logger: discard})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: err = %v, want ErrCorrupt naming the file", err)
			}
		})
	}
}

// TestTornLastLineIsDropped: an incomplete or unreadable last line of the
// newest journal is a write that a crash cut short and was never
// acknowledged: it is dropped with a warning, cut off, and the store
// goes on.
func TestTornLastLineIsDropped(t *testing.T) {
	a, b := corruptionEvents()
	for _, tc := range []struct {
		name string
		tear func(line []byte) []byte
	}{
		{"cut short", func(line []byte) []byte { return line[:len(line)/2] }},
		{"zeros where data should be", func(line []byte) []byte {
			torn := bytes.Clone(line)
			for i := 20; i < len(torn)-1; i++ {
				torn[i] = 0
			}
			return torn
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			journal := healthy(t, path, a, b)
			data := readFile(t, journal)
			start := lineStart(data, 3)
			writeFile(t, journal, append(data[:start:start], tc.tear(data[start:])...))

			var scanned int
			res, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func(evs []tokenledger.Event) error { scanned += len(evs); return nil })
			if err != nil || res.TornTail == nil || res.TornTail.Offset != int64(start) || scanned != len(a)+8 {
				t.Fatalf("Scan: %+v (torn %+v), %d events, err %v; want the torn line at %d reported and %d events", res, res.TornTail, scanned, err, start, len(a)+8)
			}
			var logs logBuffer
			s := mustOpen(t, path, Options{Logger: logs.logger()})
			if !strings.Contains(logs.String(), "incomplete last line") {
				t.Errorf("no warning about the dropped line in:\n%s", logs.String())
			}
			if got := readFile(t, journal); len(got) != start {
				t.Errorf("journal is %d bytes after Open, want it cut to %d", len(got), start)
			}
			want := append(append(append([]tokenledger.Event{}, a...), b[0]...), b[1]...)
			sameDays(t, "after dropping the torn line", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, want))
			// The next write starts on a clean line.
			if _, err := s.Add(context.Background(), storetest.Batch(b[2])); err != nil {
				t.Fatal(err)
			}
			if _, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil }); err != nil {
				t.Fatalf("after appending past a dropped line the journal does not read: %v", err)
			}
			s.Close()
			s = mustOpen(t, path, Options{})
			defer s.Close()
			sameDays(t, "after restart", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, append(want, b[2]...)))
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func equalFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCorruptOriginalFile: the original service's file that is not valid
// JSON is refused (never converted or overwritten) and Repair moves it
// aside.
func TestCorruptOriginalFile(t *testing.T) {
	path := tempPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	data := []byte("[\n  {\"id\": \"a\", \"timestamp\": \"2026-11-27T10:00:00.000Z\", \"model\": \"m\", \"tokensUsed\": 5, \"tokenType\": \"total\"},\n  {\"id\": \"b\" \"timestamp\": \"2026-11-27T10:00:00.000Z\"}\n]\n")
	writeFile(t, path, data)
	_, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != path || ce.Line != 3 || ce.Offset != int64(bytes.Index(data, []byte(`"timestamp": "2026-11-27T10:00:00.000Z"}`))) {
		t.Fatalf("Open: err = %v, want a *CorruptError at line 3 on the second \"timestamp\"", err)
	}
	if got := readFile(t, path); string(got) != string(data) {
		t.Fatal("a corrupt original file was changed")
	}
	moved, err := Repair(path)
	if err != nil || len(moved) != 1 {
		t.Fatalf("Repair: moved %v, err %v", moved, err)
	}
	s := mustOpen(t, path, Options{})
	defer s.Close()
	if days := allDays(t, s, fixedNow, 90); len(days) != 0 {
		t.Errorf("after Repair the store holds %+v, want nothing", days)
	}
}

// TestRepairKeepsRecordsMergedByADamagedNewline: when the newline between
// two journal lines is overwritten, the journal is refused (damage, not a
// torn tail), and Repair keeps both records — every byte of each is still
// readable and its checksum matches — and the lines around them.
func TestRepairKeepsRecordsMergedByADamagedNewline(t *testing.T) {
	a, b := corruptionEvents()
	path := tempPath(t)
	j := healthy(t, path, a, b)
	data := readFile(t, j)
	data[lineStart(data, 2)-1] = ' ' // lines 1 and 2 merged; line 3 intact
	writeFile(t, j, data)
	if _, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with merged journal lines: %v, want ErrCorrupt", err)
	}
	if _, err := Repair(path); err != nil {
		t.Fatal(err)
	}
	st := mustOpen(t, path, Options{Now: clockAt(fixedNow)})
	var all []tokenledger.Event
	all = append(all, a...)
	for _, l := range b {
		all = append(all, l...)
	}
	sameDays(t, "after Repair", allDays(t, st, fixedNow, tokenledger.DefaultRetentionDays), referenceDays(t, fixedNow, tokenledger.DefaultRetentionDays, all))
}
