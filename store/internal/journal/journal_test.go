package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func scanAll(t *testing.T, path string) ([]string, int64, bool) {
	t.Helper()
	var got []string
	end, torn, err := Scan(path, 0, func(p []byte, _ int64) error {
		got = append(got, string(p))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got, end, torn != nil
}

func TestAppendConcurrentlyAndScan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.log")
	w, err := OpenWriter(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := w.Append(context.Background(), fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	size := w.Size()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, end, torn := scanAll(t, path)
	if len(got) != 1600 || torn || end != size {
		t.Fatalf("scanned %d records, end %d (size %d), torn %v; want 1600, %d, false", len(got), end, size, torn, size)
	}
	seen := map[string]bool{}
	for _, r := range got {
		seen[r] = true
	}
	if len(seen) != 1600 {
		t.Errorf("%d distinct records, want 1600", len(seen))
	}
}

func TestTornTailIsCutAndAppendingContinues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.log")
	w, err := OpenWriter(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"one", "two"} {
		if err := w.Append(context.Background(), []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	good := w.Size()
	w.Close()
	for _, tail := range []string{"0000", "deadbeef thr", "\x00\x00\x00\x00", "12345678 bad checksum\n"} {
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.WriteString(tail)
		f.Close()
		got, end, torn := scanAll(t, path)
		if strings.Join(got, ",") != "one,two" || end != good || !torn {
			t.Fatalf("tail %q: got %v end %d torn %v; want one,two at %d, torn", tail, got, end, torn, good)
		}
		w, err := OpenWriter(path, end)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Append(context.Background(), []byte("three")); err != nil {
			t.Fatal(err)
		}
		w.Close()
		got, _, torn = scanAll(t, path)
		if strings.Join(got, ",") != "one,two,three" || torn {
			t.Fatalf("after cutting tail %q: %v torn %v", tail, got, torn)
		}
		// Back to two records for the next tail.
		os.Truncate(path, good)
	}
}

func TestDamageInTheMiddleIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.log")
	w, _ := OpenWriter(path, 0)
	for _, p := range []string{"one", "two", "three"} {
		w.Append(context.Background(), []byte(p))
	}
	w.Close()
	b, _ := os.ReadFile(path)
	second := strings.Index(string(b), "\n") + 1
	b[second+10] ^= 0x01 // flip a bit inside "two"
	os.WriteFile(path, b, 0o644)
	_, _, err := Scan(path, 0, func([]byte, int64) error { return nil })
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CorruptError", err)
	}
	if ce.Line != 2 || ce.Offset != int64(second) || !strings.Contains(err.Error(), path) {
		t.Errorf("CorruptError = %+v (%v), want line 2 offset %d naming the file", ce, err, second)
	}
}

// TestDamageFoundFromAnOffsetNamesTheFilesLine: a scan that starts in the
// middle of a journal (the spool, from its cursor) reports damage at the
// file's line number, not one counted from where it started.
func TestDamageFoundFromAnOffsetNamesTheFilesLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.log")
	w, _ := OpenWriter(path, 0)
	var offs []int64
	for _, p := range []string{"one", "two", "three", "four"} {
		w.Append(context.Background(), []byte(p))
		offs = append(offs, w.Size())
	}
	w.Close()
	b, _ := os.ReadFile(path)
	b[offs[1]+10] ^= 0x01 // flip a bit inside "three", line 3
	os.WriteFile(path, b, 0o644)
	_, _, err := Scan(path, offs[0], func([]byte, int64) error { return nil })
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Line != 3 || ce.Offset != offs[1] {
		t.Fatalf("err = %v, want *CorruptError at line 3, offset %d", err, offs[1])
	}
}

func TestScanFromOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.log")
	w, _ := OpenWriter(path, 0)
	var offs []int64
	for _, p := range []string{"a", "b", "c"} {
		w.Append(context.Background(), []byte(p))
		offs = append(offs, w.Size())
	}
	w.Close()
	var got []string
	var nexts []int64
	if _, _, err := Scan(path, offs[0], func(p []byte, next int64) error {
		got = append(got, string(p))
		nexts = append(nexts, next)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "") != "bc" || nexts[0] != offs[1] || nexts[1] != offs[2] {
		t.Errorf("from offset %d: %v at %v, want b,c at %v", offs[0], got, nexts, offs[1:])
	}
}

func TestRejectsNewlineAndMissingFileScansEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.log")
	if got, end, torn := scanAll(t, path); len(got) != 0 || end != 0 || torn {
		t.Errorf("missing file: %v %d %v", got, end, torn)
	}
	w, _ := OpenWriter(path, 0)
	defer w.Close()
	if err := w.Append(context.Background(), []byte("a\nb")); err == nil {
		t.Error("a payload with a newline was accepted")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	for _, content := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("content = %q, want %q", b, content)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file left behind: %v", err)
	}
}

// TestTornTailIsDescribed: the torn record is reported with its line,
// offset, length and what is wrong with it, so that an owner for whom it
// cannot be a crash (a journal that is not the newest) can name it.
func TestTornTailIsDescribed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.log")
	one, _ := AppendRecord(nil, []byte("one"))
	for _, tc := range []struct{ tail, reason string }{
		{"0000", "the line is incomplete (it has no line end)"},
		{"nonsense\n", "the line does not start with a checksum"},
		{"12345678 bad checksum\n", "checksum mismatch"},
	} {
		if err := os.WriteFile(path, append(bytes.Clone(one), tc.tail...), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		end, torn, err := ScanReader(path, f, 0, func([]byte, int64) error { return nil })
		f.Close()
		want := Torn{Line: 2, Offset: int64(len(one)), Bytes: int64(len(tc.tail)), Reason: tc.reason}
		if err != nil || torn == nil || *torn != want || end != want.Offset {
			t.Errorf("tail %q: end %d, torn %+v, err %v; want %+v", tc.tail, end, torn, err, want)
		}
	}
}

func TestAppendAndDecodeRecord(t *testing.T) {
	line, err := AppendRecord([]byte("prefix"), []byte(`["x"]`))
	if err != nil {
		t.Fatal(err)
	}
	sum := crc32.Checksum([]byte(`["x"]`), crc32.MakeTable(crc32.Castagnoli))
	if want := fmt.Sprintf("prefix%08x [\"x\"]\n", sum); string(line) != want {
		t.Errorf("AppendRecord = %q, want %q", line, want)
	}
	if p, err := DecodeRecord(line[len("prefix"):]); err != nil || string(p) != `["x"]` {
		t.Errorf("DecodeRecord = %q, %v", p, err)
	}
	for _, bad := range []string{"", "a\nb"} {
		if _, err := AppendRecord(nil, []byte(bad)); err == nil {
			t.Errorf("AppendRecord accepted %q", bad)
		}
	}
	good := string(line[len("prefix"):])
	for _, bad := range []string{good[:len(good)-1], good[:9] + "\n", good[:8] + "\n", "g" + good[1:], good[:7] + "?" + good[8:], strings.Replace(good, "x", "y", 1)} {
		if _, err := DecodeRecord([]byte(bad)); err == nil {
			t.Errorf("DecodeRecord accepted %q", bad)
		}
	}
}

func TestAtomicFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := CreateAtomic(path, "f.json.tmp-*", 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(a.File().Name()), "f.json.tmp-") || filepath.Dir(a.File().Name()) != dir {
		t.Errorf("temp file %s is not named after the pattern in the file's directory", a.File().Name())
	}
	a.File().WriteString("discarded")
	a.Discard()
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("after Discard the file holds %q, want the old content", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(left) != 0 {
		t.Errorf("Discard left %v", left)
	}

	a, err = CreateAtomic(path, "f.json.tmp-*", 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Discard()
	a.File().WriteString("new")
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	a.Discard() // after Commit: nothing to do
	st, err := os.Stat(path)
	if b, _ := os.ReadFile(path); err != nil || string(b) != "new" || st.Mode().Perm() != 0o640 {
		t.Errorf("after Commit: %q, mode %v, err %v; want \"new\", -rw-r-----", b, st.Mode().Perm(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(left) != 0 {
		t.Errorf("Commit left %v", left)
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	w, err := OpenWriter(filepath.Join(b.TempDir(), "j.log"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	payload := []byte(`{"id":"0190d2f4-1c2b-7cc3-9f5e-2d6a0f1b2c3d","model":"gpt-4o","promptTokens":1200,"completionTokens":300}`)
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Append(context.Background(), payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestMergedLastLinesAreDamageNotTorn: when the newline between the last
// two records is overwritten, the file ends in one bad line that starts
// with a whole valid record. A crash cannot write that (it tears only the
// end of what it wrote), so it is damage to acknowledged records and is
// refused; a last line cut short, or zeroed after its header, is still
// torn.
func TestMergedLastLinesAreDamageNotTorn(t *testing.T) {
	var data []byte
	for _, p := range []string{"one", "two", "three"} {
		data, _ = AppendRecord(data, []byte(p))
	}
	second := bytes.IndexByte(data, '\n') + 1
	third := second + bytes.IndexByte(data[second:], '\n') + 1
	for name, tc := range map[string]struct {
		data    []byte
		corrupt bool
	}{
		"newline overwritten": {append(append(bytes.Clone(data[:third-1]), 'x'), data[third:]...), true},
		"newline zeroed":      {append(append(bytes.Clone(data[:third-1]), 0), data[third:]...), true},
		"last line cut short": {data[:len(data)-3], false},
		"last line zeroed":    {append(bytes.Clone(data[:third+9]), append(make([]byte, len(data)-third-10), '\n')...), false},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.log")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var got []string
			end, torn, err := Scan(path, 0, func(p []byte, _ int64) error {
				got = append(got, string(p))
				return nil
			})
			var ce *CorruptError
			if tc.corrupt {
				if !errors.As(err, &ce) || ce.Line != 2 || ce.Offset != int64(second) {
					t.Fatalf("Scan = %d, %+v, %v; want damage at line 2, byte %d", end, torn, err, second)
				}
				return
			}
			if err != nil || torn == nil || end != int64(third) || strings.Join(got, ",") != "one,two" {
				t.Fatalf("Scan = %v, %d, %+v, %v; want one,two and a torn line at %d", got, end, torn, err, third)
			}
		})
	}
}

func TestSplitMerged(t *testing.T) {
	one, _ := AppendRecord(nil, []byte("first record"))
	two, _ := AppendRecord(nil, []byte("second"))
	merged := append(append([]byte{}, one...), two...)
	merged[len(one)-1] = 'x' // the newline between them overwritten
	rec, rest, ok := SplitMerged(merged)
	if !ok || string(rec) != string(one) || string(rest) != string(two) {
		t.Fatalf("SplitMerged = %q, %q, %v; want %q, %q", rec, rest, ok, one, two)
	}
	if merged[len(one)-1] != 'x' {
		t.Errorf("SplitMerged changed its input")
	}
	for _, bad := range [][]byte{[]byte("garbage line\n"), one[:len(one)-3], []byte("00000000 x\n")} {
		if _, _, ok := SplitMerged(bad); ok {
			t.Errorf("SplitMerged(%q) found a record it does not begin with", bad)
		}
	}
}

// TestMkdirAllSyncsEachNewDirectorysParent: a directory created for a
// journal must itself be durable in its parent, or a crash can take it,
// and every acknowledged record inside, away. Directories that existed
// before are left alone.
func TestMkdirAllSyncsEachNewDirectorysParent(t *testing.T) {
	base := t.TempDir()
	var synced []string
	syncDir = func(path string) error {
		synced = append(synced, filepath.Dir(path))
		return SyncDir(path)
	}
	defer func() { syncDir = SyncDir }()

	dir := filepath.Join(base, "a", "b", "c")
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("%s not created: %v", dir, err)
	}
	want := []string{base, filepath.Join(base, "a"), filepath.Join(base, "a", "b")}
	if !slices.Equal(synced, want) {
		t.Errorf("synced the parents %q, want %q", synced, want)
	}

	synced = nil
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 0 {
		t.Errorf("an existing directory synced %q, want nothing", synced)
	}

	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := MkdirAll(filepath.Join(file, "x"), 0o755)
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("a file in the way: error %v, want one saying it is not a directory", err)
	}
}
