package filestore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// Hostile files: whatever sits at the usage file's path — truncated JSON,
// a 200 MB file, numbers beyond int64, deep nesting, repeated keys,
// invalid UTF-8 — Scan and Open give a clear error or read it within the
// documented rules; never a panic, unbounded memory, or a changed file.

// hostileOutcome is what Scan and Open did with one file.
type hostileOutcome struct {
	scanErr, openErr error
	res              ScanResult
	days             []tokenledger.Day
}

// tryHostile writes data as a usage file (and journal as its first
// journal, when not nil) and runs Scan and Open on it. It fails the test
// when they disagree, when a refusal changed a file, or when an error is
// not one sentence naming the file.
func tryHostile(t *testing.T, data, journal []byte) hostileOutcome {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token_usage.json")
	if data != nil {
		writeFile(t, path, data)
	}
	if journal != nil {
		writeFile(t, path+".journal-000001", journal)
	}
	var out hostileOutcome
	out.res, out.scanErr = Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil })
	before := snapshotFiles(t, filepath.Dir(path))
	st, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard})
	out.openErr = err
	if err != nil {
		if after := snapshotFiles(t, filepath.Dir(path)); !equalFiles(before, after) {
			t.Errorf("Open refused the file (%v) and changed it: %v → %v", err, keys(before), keys(after))
		}
	} else {
		out.days = allDays(t, st, fixedNow, tokenledger.DefaultRetentionDays)
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if (out.scanErr == nil) != (out.openErr == nil) {
		t.Errorf("Scan said %v, Open said %v", out.scanErr, out.openErr)
	}
	for _, e := range []error{out.scanErr, out.openErr} {
		if e == nil {
			continue
		}
		msg := e.Error()
		if !strings.Contains(msg, path) || strings.Contains(msg, "\n") || len(msg) > 600 {
			t.Errorf("error is not one sentence naming the file: %q", msg)
		}
		if !errors.Is(e, ErrCorrupt) && !errors.Is(e, ErrUnknownVersion) {
			t.Errorf("error is neither ErrCorrupt nor ErrUnknownVersion: %v", e)
		}
	}
	return out
}

// oursFile returns a usage file of our format with one day holding the
// given event objects (JSON text), and extra header members.
func oursFile(header string, events ...string) []byte {
	return []byte(`{"format":"tokenledger","version":1,` + header + `"days":[{"date":"2026-11-27","events":[` + strings.Join(events, ",") + `]}]}`)
}

const goodEvent = `{"id":"e1","timestamp":"2026-11-27T10:00:00Z","model":"gpt-4o","promptTokens":10,"completionTokens":2,"totalTokens":12}`

func originalFile(records ...string) []byte {
	return []byte("[" + strings.Join(records, ",") + "]")
}

func originalRecord(id, tokens string) string {
	return `{"id":"` + id + `","timestamp":"2026-11-27T10:00:00Z","model":"gpt-4o","tokensUsed":` + tokens + `,"tokenType":"prompt"}`
}

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

func TestHostileFiles(t *testing.T) {
	healthyOurs := oursFile(`"foldedJournal":0,`, goodEvent, strings.Replace(goodEvent, `"e1"`, `"e2"`, 1))
	healthyOriginal := originalFile(originalRecord("r1", "5"), originalRecord("r2", "7"))
	type want int
	const (
		corrupt want = iota
		unknownVersion
		loads
	)
	tests := []struct {
		name    string
		data    []byte
		journal []byte
		want    want
		check   func(t *testing.T, o hostileOutcome)
	}{
		// Numbers beyond int64 (and beyond 2^40) are refused in our
		// format; in the original one they make only that record invalid.
		{"ours: tokens beyond int64", oursFile("", strings.Replace(goodEvent, `"promptTokens":10`, `"promptTokens":99999999999999999999`, 1)), nil, corrupt, nil},
		{"ours: tokens beyond 2^40", oursFile("", strings.Replace(goodEvent, `"promptTokens":10,"completionTokens":2,"totalTokens":12`, `"promptTokens":1099511627777,"completionTokens":2,"totalTokens":1099511627779`, 1)), nil, corrupt, nil},
		{"ours: tokens as a huge exponent", oursFile("", strings.Replace(goodEvent, `"promptTokens":10`, `"promptTokens":1e400`, 1)), nil, corrupt, nil},
		{"ours: negative tokens", oursFile("", strings.Replace(goodEvent, `"promptTokens":10`, `"promptTokens":-10`, 1)), nil, corrupt, nil},
		{"ours: cost beyond int64 nanos", oursFile("", strings.Replace(goodEvent, `"totalTokens":12`, `"totalTokens":12,"costUsd":99999999999999999999`, 1)), nil, corrupt, nil},
		{"ours: foldedJournal beyond uint64", oursFile(`"foldedJournal":99999999999999999999,`, goodEvent), nil, corrupt, nil},
		// A folded journal number that cannot be incremented would make the
		// next journal look folded already, and its events be lost.
		{"ours: foldedJournal 2^64-1", oursFile(`"foldedJournal":18446744073709551615,`, goodEvent), nil, corrupt, nil},
		{"ours: foldedJournal 2^63+1", oursFile(`"foldedJournal":9223372036854775809,`, goodEvent), nil, corrupt, nil},
		{"ours: foldedJournal 2^63", oursFile(`"foldedJournal":9223372036854775808,`, goodEvent), nil, loads, nil},
		{"ours: version beyond int64", []byte(`{"format":"tokenledger","version":99999999999999999999,"days":[]}`), nil, unknownVersion, nil},
		{"original: tokensUsed beyond int64", originalFile(originalRecord("r1", "99999999999999999999"), originalRecord("r2", "7")), nil, loads,
			func(t *testing.T, o hostileOutcome) {
				if o.res.Invalid != 1 || o.res.Valid != 1 {
					t.Errorf("Valid %d, Invalid %d; want the huge record skipped and the other read", o.res.Valid, o.res.Invalid)
				}
			}},
		{"original: tokensUsed 1e30", originalFile(originalRecord("r1", "1e30")), nil, loads,
			func(t *testing.T, o hostileOutcome) {
				if o.res.Invalid != 1 {
					t.Errorf("Invalid %d, want 1", o.res.Invalid)
				}
			}},
		{"journal: tokens beyond int64 with a valid checksum", nil, journalLine(`[` + strings.Replace(goodEvent, `"promptTokens":10`, `"promptTokens":99999999999999999999`, 1) + `]`), corrupt, nil},

		// Deep nesting: encoding/json stops at 10,000 levels; below that a
		// nested value where none belongs is refused, in the original
		// format's ignored metadata it is read and dropped.
		{"ours: nesting in the summary beyond the decoder's limit", []byte(`{"format":"tokenledger","version":1,"days":[{"date":"2026-11-27","summary":` + nested(20000) + `,"events":[` + goodEvent + `]}]}`), nil, corrupt, nil},
		{"ours: nesting in an event", oursFile("", strings.Replace(goodEvent, `"model":"gpt-4o"`, `"model":`+nested(500), 1)), nil, corrupt, nil},
		{"ours: nesting instead of days", []byte(`{"format":"tokenledger","version":1,"days":` + strings.Repeat("[", 50000) + strings.Repeat("]", 50000) + `}`), nil, corrupt, nil},
		{"original: nested metadata within the limit", originalFile(strings.Replace(originalRecord("r1", "5"), `}`, `,"metadata":`+nested(5000)+`}`, 1)), nil, loads,
			func(t *testing.T, o hostileOutcome) {
				if o.res.Valid != 1 {
					t.Errorf("Valid %d, want 1", o.res.Valid)
				}
			}},
		{"original: nested metadata beyond the decoder's limit", originalFile(strings.Replace(originalRecord("r1", "5"), `}`, `,"metadata":`+nested(20000)+`}`, 1)), nil, corrupt, nil},
		{"original: an array of arrays", []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)), nil, corrupt, nil},

		// Repeated keys: in an event the last one counts (as encoding/json
		// reads them; the fast reader agrees); a repeated "days" is refused.
		{"ours: a repeated token field", oursFile("", strings.Replace(goodEvent, `"totalTokens":12`, `"totalTokens":12,"promptTokens":1,"totalTokens":3`, 1)), nil, loads,
			func(t *testing.T, o hostileOutcome) {
				if got := o.res.Valid; got != 1 {
					t.Fatalf("Valid %d, want 1", got)
				}
				for _, d := range o.days {
					if d.RequestCount > 0 && (d.PromptTokens != 1 || d.TotalTokens != 3) {
						t.Errorf("repeated keys read as prompt %d, total %d; want the last values 1 and 3", d.PromptTokens, d.TotalTokens)
					}
				}
			}},
		// Outside events, a repeated key is refused: tokenledger never
		// writes one, and which of two values would count is a guess (a
		// day's second "date" moved its events to another day).
		{"ours: a repeated header field", []byte(`{"format":"tokenledger","format":"tokenledger","version":1,"version":1,"days":[]}`), nil, corrupt, nil},
		{"ours: a repeated foldedJournal", oursFile(`"foldedJournal":0,"foldedJournal":5,`, goodEvent), nil, corrupt, nil},
		{"ours: a day's date twice", []byte(`{"format":"tokenledger","version":1,"days":[{"date":"2026-11-27","events":[` + goodEvent + `],"date":"2026-11-26"}]}`), nil, corrupt, nil},
		{"ours: a day's events twice", []byte(`{"format":"tokenledger","version":1,"days":[{"date":"2026-11-27","events":[` + goodEvent + `],"events":[]}]}`), nil, corrupt, nil},
		{"ours: repeated days", []byte(`{"format":"tokenledger","version":1,"days":[],"days":[]}`), nil, corrupt, nil},
		{"ours: a repeated date", []byte(`{"format":"tokenledger","version":1,"days":[{"date":"2026-11-27","events":[]},{"date":"2026-11-27","events":[]}]}`), nil, corrupt, nil},
		// An original record is checked by the API's rules, which refuse a
		// repeated field: the record is invalid, the others are read.
		{"original: a repeated field", originalFile(strings.Replace(originalRecord("r1", "5"), `"tokenType":"prompt"`, `"tokenType":"prompt","tokensUsed":999999`, 1), originalRecord("r2", "7")), nil, loads,
			func(t *testing.T, o hostileOutcome) {
				if o.res.Invalid != 1 || o.res.Valid != 1 {
					t.Fatalf("Valid %d, Invalid %d; want the record with a repeated field skipped and the other read", o.res.Valid, o.res.Invalid)
				}
				if r := o.res.InvalidRecords[0]; r.ID != "r1" || r.Reason != `"tokensUsed" appears more than once` {
					t.Errorf("invalid record %+v, want r1 with the repeated field named", r)
				}
				var total int64
				for _, d := range o.days {
					total += d.TotalTokens
				}
				if total != 7 {
					t.Errorf("total %d, want 7 (only r2)", total)
				}
			}},
		// And the API refuses a timestamp more than 5 minutes ahead.
		{"original: a timestamp in the future", originalFile(strings.Replace(originalRecord("r1", "5"), `2026-11-27T10:00:00Z`, `2099-01-01T00:00:00Z`, 1), originalRecord("r2", "7")), nil, loads,
			func(t *testing.T, o hostileOutcome) {
				if o.res.Invalid != 1 || o.res.Valid != 1 {
					t.Fatalf("Valid %d, Invalid %d; want the record from 2099 skipped and the other read", o.res.Valid, o.res.Invalid)
				}
				if r := o.res.InvalidRecords[0]; r.ID != "r1" || !strings.Contains(r.Reason, "future") {
					t.Errorf("invalid record %+v, want r1 refused for its future timestamp", r)
				}
				for _, d := range o.days {
					if d.Date > "2026-11-27" && d.RequestCount > 0 {
						t.Errorf("day %s holds %d requests", d.Date, d.RequestCount)
					}
				}
			}},

		// Invalid UTF-8: refused where the rules need text (id); a name
		// is read as encoding/json reads it, with U+FFFD for the bad bytes.
		{"ours: invalid UTF-8 in an id", oursFile("", strings.Replace(goodEvent, `"e1"`, "\"e\xff1\"", 1)), nil, corrupt, nil},
		{"ours: invalid UTF-8 in a model", oursFile("", strings.Replace(goodEvent, `"gpt-4o"`, "\"gpt\xff\xfe-4o\"", 1)), nil, loads,
			func(t *testing.T, o hostileOutcome) {
				for _, d := range o.days {
					for m := range d.Models {
						if m != "gpt\ufffd\ufffd-4o" {
							t.Errorf("model read as %q", m)
						}
					}
				}
			}},
		{"ours: invalid UTF-8 outside strings", []byte("{\"format\":\"tokenledger\",\"version\":1,\xff\"days\":[]}"), nil, corrupt, nil},
		{"original: invalid UTF-8 in a model", originalFile(strings.Replace(originalRecord("r1", "5"), `"gpt-4o"`, "\"gpt\xff\"", 1), originalRecord("r2", "1")), nil, loads,
			func(t *testing.T, o hostileOutcome) {
				if o.res.Invalid != 1 || o.res.Valid != 1 {
					t.Errorf("Valid %d, Invalid %d; want the record with invalid UTF-8 skipped", o.res.Valid, o.res.Invalid)
				}
			}},
		{"a UTF-16 file with a byte order mark", append([]byte{0xff, 0xfe}, []byte("[\x00]\x00")...), nil, corrupt, nil},
		{"a UTF-8 byte order mark", append([]byte{0xef, 0xbb, 0xbf}, healthyOriginal...), nil, corrupt, nil},

		{"empty file", []byte{}, nil, corrupt, nil},
		{"only white space", []byte(" \n\t "), nil, corrupt, nil},
		{"null", []byte("null"), nil, corrupt, nil},
		{"a string", []byte(`"tokenledger"`), nil, corrupt, nil},
		{"two values", append(healthyOriginal, healthyOriginal...), nil, corrupt, nil},
		{"NUL bytes", make([]byte, 4096), nil, corrupt, nil},
	}
	// Truncated JSON: every prefix of a healthy file in either format is
	// refused (an empty file too).
	for _, healthy := range [][]byte{healthyOurs, healthyOriginal} {
		for _, cut := range []int{1, 2, 10, len(healthy) / 3, len(healthy) / 2, len(healthy) - 2, len(healthy) - 1} {
			tests = append(tests, struct {
				name    string
				data    []byte
				journal []byte
				want    want
				check   func(t *testing.T, o hostileOutcome)
			}{fmt.Sprintf("truncated %.10s… at %d of %d", healthy, cut, len(healthy)), healthy[:cut], nil, corrupt, nil})
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tryHostile(t, tc.data, tc.journal)
			switch tc.want {
			case corrupt:
				if !errors.Is(o.scanErr, ErrCorrupt) || !errors.Is(o.openErr, ErrCorrupt) {
					t.Errorf("Scan: %v; Open: %v; want both to report corruption", o.scanErr, o.openErr)
				}
			case unknownVersion:
				if !errors.Is(o.scanErr, ErrUnknownVersion) || !errors.Is(o.openErr, ErrUnknownVersion) {
					t.Errorf("Scan: %v; Open: %v; want an unknown version", o.scanErr, o.openErr)
				}
			case loads:
				if o.scanErr != nil || o.openErr != nil {
					t.Fatalf("Scan: %v; Open: %v; want the file read", o.scanErr, o.openErr)
				}
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

// journalLine returns one journal line for payload with its checksum.
func journalLine(payload string) []byte {
	return []byte(fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(payload), castagnoli), payload))
}

// heapDuring runs fn and returns the peak growth of the live heap above
// its level before fn, sampled every millisecond (runtime/metrics does not
// stop the world), and how long fn took.
func heapDuring(fn func()) (peak uint64, took time.Duration) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		max := base
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- max
				return
			case <-tick.C:
				if v := read(); v > max {
					max = v
				}
			}
		}
	}()
	start := time.Now()
	fn()
	took = time.Since(start)
	close(stop)
	max := <-done
	if v := read(); v > max {
		max = v
	}
	if max < base {
		return 0, took
	}
	return max - base, took
}

// writeBig writes size bytes to path: head, then records from next until
// size is reached, cut in the middle of the last one (never closed).
func writeBig(t *testing.T, path string, size int64, head string, next func(i int) string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n, _ := io.WriteString(w, head)
	written := int64(n)
	for i := 0; written < size; i++ {
		rec := next(i)
		if rest := size - written; int64(len(rec)) > rest {
			rec = rec[:rest]
		}
		n, _ := io.WriteString(w, rec)
		written += int64(n)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// small reports true under the race detector (which makes decoding about ten
// times slower) and with -short: the big files are then 4 MB, the heap
// bound shrinks with them (reading such a file whole would still break
// it), and only Scan reads them (Open reads with the same code).
func small() bool { return raceEnabled || testing.Short() }

// bigFileSize is the size of the big hostile files: 200 MB, or 4 MB when
// small.
func bigFileSize() int64 {
	if small() {
		return 4 << 20
	}
	return 200 << 20
}

// maxStreamingHeap bounds the heap growth while a big file is read
// record by record, or day by day with small days: the decoder's buffers
// (1 MiB reader, the decoder's own window, one record) and the garbage
// between collections, but nothing that grows with the file. (Measured:
// 4 to 7 MiB for 200 MB.)
const maxStreamingHeap = 64 << 20

// streamingBound is the heap bound of TestBigFiles: maxStreamingHeap, or
// 12 MiB for the small files (read whole, 4 MB would take about 18 MiB;
// streamed, they take about 4 MiB).
func streamingBound() uint64 {
	if small() {
		return 12 << 20
	}
	return maxStreamingHeap
}

// maxHeapPerDayEvent bounds the heap growth per event of the largest day
// in our format: a day is read whole (its events, then the ids that dedupe
// it), about 650 bytes per event when measured.
const maxHeapPerDayEvent = 1024

// readBig runs Scan and then, withOpen, Open on the file at path, which
// must be refused, and returns their peak heap growth. It checks that Open
// left the file byte for byte as it was.
func readBig(t *testing.T, path string, withOpen bool, check func(t *testing.T, res ScanResult, err error)) (scanPeak, openPeak uint64) {
	t.Helper()
	sum := fileSum(t, path)
	info, _ := os.Stat(path)
	var res ScanResult
	var err error
	scanPeak, took := heapDuring(func() {
		res, err = Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil })
	})
	t.Logf("Scan of %d MB: %v, peak heap growth %.1f MiB: %v", info.Size()>>20, took.Round(time.Millisecond), float64(scanPeak)/(1<<20), err)
	check(t, res, err)
	if !withOpen {
		return scanPeak, 0
	}
	var st *Store
	openPeak, took = heapDuring(func() {
		st, err = Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard})
	})
	t.Logf("Open of %d MB: %v, peak heap growth %.1f MiB", info.Size()>>20, took.Round(time.Millisecond), float64(openPeak)/(1<<20))
	if err == nil {
		st.Close()
		t.Fatal("Open read a file that Scan refused")
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open: %v, want corruption", err)
	}
	if fileSum(t, path) != sum {
		t.Error("Open refused the file and changed it")
	}
	return scanPeak, openPeak
}

// wantCut checks that a big file cut off at the end is refused there,
// after the records before the cut were read.
func wantCut(size int64, minRecords int) func(t *testing.T, res ScanResult, err error) {
	return func(t *testing.T, res ScanResult, err error) {
		t.Helper()
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("err = %v, want corruption at the cut", err)
		}
		if ce.Offset < size-16<<10 {
			t.Errorf("corruption reported at byte %d of %d, want at the cut", ce.Offset, size)
		}
		if res.Records < minRecords {
			t.Errorf("%d records read before the cut, want at least %d", res.Records, minRecords)
		}
	}
}

// TestBigFiles reads 200 MB files (4 MB under -race or -short) that must
// be streamed: the original format record by record, ours day by day. The
// heap grows by less than maxStreamingHeap whatever the size, and a refused
// file is left byte for byte as it was.
func TestBigFiles(t *testing.T) {
	size := bigFileSize()
	t.Run("original format, expired records, cut off", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token_usage.json")
		pad := strings.Repeat("x", 8000)
		old := fixedNow.AddDate(-1, 0, 0).Format(time.RFC3339)
		writeBig(t, path, size, "[", func(i int) string {
			return fmt.Sprintf(`{"id":"r%09d","timestamp":"%s","model":"gpt-4o","tokensUsed":%d,"tokenType":"prompt","metadata":{"pad":"%s"}},`+"\n", i, old, i%1000, pad)
		})
		scanPeak, openPeak := readBig(t, path, !small(), wantCut(size, int(size/8200)-1))
		if max(scanPeak, openPeak) > streamingBound() {
			t.Errorf("heap grew by %d MiB (Scan) and %d MiB (Open), more than the %d MiB of streaming", scanPeak>>20, openPeak>>20, streamingBound()>>20)
		}
	})
	t.Run("our format, many days, cut off", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token_usage.json")
		// Days before the window (so nothing is kept) of 2,000 events each.
		first := fixedNow.AddDate(-20, 0, 0)
		writeBig(t, path, size, `{"format":"tokenledger","version":1,"days":[`, func(i int) string {
			day := first.AddDate(0, 0, i)
			var b strings.Builder
			fmt.Fprintf(&b, `{"date":"%s","events":[`, tokenledger.DateOf(day))
			for k := range 2000 {
				if k > 0 {
					b.WriteString(",\n")
				}
				fmt.Fprintf(&b, `{"id":"e%d","timestamp":"%s","model":"gpt-4o","userId":"u%d","promptTokens":%d,"completionTokens":1,"totalTokens":%d}`, k, day.Format(time.RFC3339), k%50, k, k+1)
			}
			b.WriteString("]},\n")
			return b.String()
		})
		scanPeak, openPeak := readBig(t, path, !small(), wantCut(size, int(size/150)))
		if max(scanPeak, openPeak) > streamingBound() {
			t.Errorf("heap grew by %d MiB (Scan) and %d MiB (Open), more than the %d MiB of streaming", scanPeak>>20, openPeak>>20, streamingBound()>>20)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token_usage.json")
		rng := rand.New(rand.NewPCG(1, 2))
		block := make([]byte, 1<<20)
		for i := range block {
			block[i] = byte(rng.Uint32())
		}
		writeBig(t, path, size, "", func(int) string { return string(block) })
		scanPeak, openPeak := readBig(t, path, !small(), func(t *testing.T, res ScanResult, err error) {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want corruption", err)
			}
		})
		if max(scanPeak, openPeak) > streamingBound() {
			t.Errorf("heap grew by %d MiB", max(scanPeak, openPeak)>>20)
		}
	})
}

// TestOneBigDay documents a bound that does not stream: our format reads
// a day whole, so memory grows with the events of the largest day (about
// 650 bytes each), even when the day is expired.
func TestOneBigDay(t *testing.T) {
	size := int64(16 << 20)
	if small() {
		size = 2 << 20
	}
	path := filepath.Join(t.TempDir(), "token_usage.json")
	day := fixedNow.AddDate(-1, 0, 0)
	events := 0
	writeBig(t, path, size, `{"format":"tokenledger","version":1,"days":[{"date":"`+string(tokenledger.DateOf(day))+`","events":[`, func(i int) string {
		events++
		return fmt.Sprintf(`{"id":"e%09d","timestamp":"%s","model":"gpt-4o","userId":"u%d","promptTokens":%d,"completionTokens":1,"totalTokens":%d},`+"\n", i, day.Format(time.RFC3339), i%50, i%1000, i%1000+1)
	})
	scanPeak, openPeak := readBig(t, path, true, wantCut(size, 0))
	bound := uint64(events)*maxHeapPerDayEvent + maxStreamingHeap
	t.Logf("%d events in one day: peak heap growth %.1f MiB (Scan), %.1f MiB (Open), bound %.1f MiB", events, float64(scanPeak)/(1<<20), float64(openPeak)/(1<<20), float64(bound)/(1<<20))
	if max(scanPeak, openPeak) > bound {
		t.Errorf("heap grew by %d MiB for a day of %d events, more than the bound of %d MiB", max(scanPeak, openPeak)>>20, events, bound>>20)
	}
}

// TestOneHugeValue documents the bound that does not stream: a single
// JSON value (here a 32 MB string in a field that is skipped) is held
// whole while it is read, so memory grows with the largest value in the
// file, about three times its size; nothing else is kept.
func TestOneHugeValue(t *testing.T) {
	size := int64(32 << 20)
	if small() {
		size = 4 << 20
	}
	path := filepath.Join(t.TempDir(), "token_usage.json")
	writeBig(t, path, size, `{"format":"tokenledger","version":1,"updatedAt":"`, func(int) string { return strings.Repeat("a", 1<<20) })
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, `","days":[{"date":"2026-11-27","events":[`+goodEvent+`]}]}`)
	f.Close()
	var res ScanResult
	peak, took := heapDuring(func() {
		res, err = Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func([]tokenledger.Event) error { return nil })
	})
	t.Logf("Scan of a %d MB value: %v, peak heap growth %.1f MiB", size>>20, took.Round(time.Millisecond), float64(peak)/(1<<20))
	if err != nil || res.Valid != 1 {
		t.Fatalf("Scan = %+v, %v", res, err)
	}
	if bound := uint64(4*size) + maxStreamingHeap; peak > bound {
		t.Errorf("heap grew by %d MiB for a %d MiB value; the documented bound is 4× the value + %d MiB", peak>>20, size>>20, maxStreamingHeap>>20)
	}
	st, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	days := allDays(t, st, fixedNow, tokenledger.DefaultRetentionDays)
	st.Close()
	if n := requestCount(days); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestJournalNumberBeyondBound: a journal whose number could wrap around
// is refused by name, and nothing is changed.
func TestJournalNumberBeyondBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token_usage.json")
	huge := path + journalInfix + "18446744073709551615"
	writeFile(t, huge, journalLine(`[`+goodEvent+`]`))
	before := snapshotFiles(t, filepath.Dir(path))
	_, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard})
	if err == nil || !strings.Contains(err.Error(), huge) || !strings.Contains(err.Error(), "at most 2^63") {
		t.Fatalf("Open with journal %s: err = %v, want a refusal naming it", huge, err)
	}
	if after := snapshotFiles(t, filepath.Dir(path)); !equalFiles(before, after) {
		t.Errorf("the refused Open changed the files: %v → %v", keys(before), keys(after))
	}
}

// TestFoldedJournalNearTheBound: every "foldedJournal" the store writes is
// one it reads back. From 2^63 − 1 the next journal is 2^63, the largest
// number a journal may have, and folding it writes 2^63; from 2^63 no
// journal can follow, and a write is refused with a sentence saying so,
// changing nothing.
func TestFoldedJournalNearTheBound(t *testing.T) {
	ctx := context.Background()
	t.Run("2^63-1", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token_usage.json")
		writeFile(t, path, oursFile(`"foldedJournal":9223372036854775807,`, goodEvent))
		s := mustOpen(t, path, Options{})
		if _, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{testEvent("x", 1, 1, fixedNow)})); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard})
		if err != nil {
			t.Fatalf("reopen of the store's own file: %v", err)
		}
		days := allDays(t, s2, fixedNow, tokenledger.DefaultRetentionDays)
		s2.Close()
		if n := requestCount(days); n != 2 {
			t.Errorf("%d requests after reopening, want 2", n)
		}
	})
	t.Run("2^63", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token_usage.json")
		writeFile(t, path, oursFile(`"foldedJournal":9223372036854775808,`, goodEvent))
		s := mustOpen(t, path, Options{})
		before := snapshotFiles(t, filepath.Dir(path))
		_, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{testEvent("x", 1, 1, fixedNow)}))
		if err == nil || !strings.Contains(err.Error(), "journal numbers") {
			t.Errorf("Add after journal 2^63: %v, want a refusal saying the journal numbers are used up", err)
		}
		if after := snapshotFiles(t, filepath.Dir(path)); !equalFiles(before, after) {
			t.Errorf("the refused Add changed the files: %v → %v", keys(before), keys(after))
		}
		s.Close()
	})
}
