// Package journal is an append-only file of checksummed records, one per
// line, made durable by group commit: many concurrent Append calls share
// one write and one fsync, and each returns only after its record is on
// disk. A crash can leave at most a torn last line, which Scan reports so
// the owner can cut it away; damage anywhere else is a *CorruptError that
// names the file, line and byte offset.
//
// A line is "<crc32c of payload, 8 lowercase hex digits> <payload>\n". The
// payload is any non-empty bytes without a newline (compact JSON in
// practice), so the file stays readable with a text editor.
//
// The package also holds the durable-file helpers its users share:
// SyncDir, WriteFileAtomic and AtomicFile (temp file, fsync, rename, fsync
// of the directory).
package journal

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// MaxRecord is the largest payload a record may hold.
const MaxRecord = 16 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CorruptError reports damage in a journal that a crash cannot explain.
type CorruptError struct {
	Path   string
	Line   int   // 1-based line number
	Offset int64 // byte offset of the start of the line
	Reason string
}

// Error returns one sentence naming the file, line, offset and damage.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is damaged at line %d (byte offset %d): %s", e.Path, e.Line, e.Offset, e.Reason)
}

// Why a line is not a valid record; a *CorruptError or a Torn carries the
// message as its Reason.
var (
	errIncomplete = errors.New("the line is incomplete (it has no line end)")
	errNoChecksum = errors.New("the line does not start with a checksum")
	errChecksum   = errors.New("checksum mismatch")
	errTooLong    = fmt.Errorf("the record is longer than %d bytes", MaxRecord)
)

// AppendRecord appends payload to dst framed as one journal line. The
// payload must not be empty nor hold a newline, and is at most MaxRecord
// bytes.
func AppendRecord(dst, payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return dst, errors.New("journal record must not be empty")
	}
	if bytes.IndexByte(payload, '\n') >= 0 {
		return dst, errors.New("journal record must not contain a newline")
	}
	if len(payload) > MaxRecord {
		return dst, fmt.Errorf("journal record of %d bytes exceeds %d", len(payload), MaxRecord)
	}
	sum := crc32.Checksum(payload, castagnoli)
	dst = append(dst, "00000000 "...)
	hex.Encode(dst[len(dst)-9:len(dst)-1], []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	dst = append(dst, payload...)
	return append(dst, '\n'), nil
}

// DecodeRecord checks one line, newline included, and returns its
// payload, which aliases line. The error says why the line is not a
// record: it has no newline, no checksum, or one that does not match.
func DecodeRecord(line []byte) ([]byte, error) {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		return nil, errIncomplete
	}
	line = line[:len(line)-1]
	want, ok := checksumOf(line)
	if !ok {
		return nil, errNoChecksum
	}
	payload := line[9:]
	if crc32.Checksum(payload, castagnoli) != want {
		return nil, errChecksum
	}
	return payload, nil
}

// checksumOf reads the checksum that starts line ("xxxxxxxx " and at least
// one payload byte), and reports whether there is one.
func checksumOf(line []byte) (uint32, bool) {
	if len(line) < 10 || line[8] != ' ' {
		return 0, false
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:8]); err != nil {
		return 0, false
	}
	return uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3]), true
}

// Torn is a bad record with nothing after it at the end of a journal:
// what a crash mid-append leaves. Whether that is acceptable is the
// owner's call (a crash can tear only the newest file it appends to).
type Torn struct {
	Line   int   // 1-based, counted from where the scan started
	Offset int64 // where the record starts; the journal is valid up to here
	Bytes  int64 // the record's length, to the end of the file
	Reason string
}

// Scan reads the journal at path from byte offset start, calling fn with
// each record's payload and the offset just past its line. It returns the
// offset where valid records end. When the file ends in a bad record (no
// newline, or a complete line that is not a valid record) that is
// described by torn, and end is where it starts. The payload passed to fn
// is valid only until fn returns. A bad line followed by more data is a
// *CorruptError, and so is a bad last line that starts with a whole valid
// record and goes on (a newline overwritten, merging two records: a crash
// tears only the end of what it wrote, so that is damage to a record that
// was acknowledged). A missing file scans as empty. fn's error stops the
// scan and is returned as is.
func Scan(path string, start int64, fn func(payload []byte, next int64) error) (end int64, torn *Torn, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return 0, nil, fmt.Errorf("seek journal %s: %w", path, err)
	}
	end, torn, err = ScanReader(path, f, start, fn)
	if ce := (*CorruptError)(nil); start > 0 && errors.As(err, &ce) {
		// ScanReader counts lines from start; the error names the file's.
		if n, cerr := countLines(f, start); cerr == nil {
			ce.Line += n
		}
	}
	return end, torn, err
}

// countLines returns how many line ends the first n bytes of f hold.
func countLines(f *os.File, n int64) (int, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, n), 1<<16)
	lines := 0
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			lines++
		}
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return 0, err
		}
	}
}

// ScanReader is Scan on a journal already open as r and positioned at
// byte offset start; path names it in errors.
func ScanReader(path string, r io.Reader, start int64, fn func(payload []byte, next int64) error) (end int64, torn *Torn, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	off := start
	for line := 1; ; line++ {
		b, rerr := readLine(br)
		if len(b) == 0 && errors.Is(rerr, io.EOF) {
			return off, nil, nil
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, errTooLong) {
			return off, nil, fmt.Errorf("read journal %s: %w", path, rerr)
		}
		payload, bad := DecodeRecord(b)
		if errors.Is(rerr, errTooLong) {
			bad = errTooLong
		}
		if bad != nil {
			// A bad record with nothing after it is what a crash mid-append
			// leaves; anything else is damage.
			if (errors.Is(rerr, io.EOF) || atEnd(br)) && !startsWithRecord(b) {
				return off, &Torn{Line: line, Offset: off, Bytes: int64(len(b)), Reason: bad.Error()}, nil
			}
			return off, nil, &CorruptError{Path: path, Line: line, Offset: off, Reason: bad.Error()}
		}
		next := off + int64(len(b))
		if err := fn(payload, next); err != nil {
			return off, nil, err
		}
		off = next
	}
}

// readLine returns the next line including its newline, io.EOF with what
// is left when the file ends without one, or errTooLong.
func readLine(r *bufio.Reader) ([]byte, error) {
	var acc []byte
	for {
		b, err := r.ReadSlice('\n')
		if acc == nil && !errors.Is(err, bufio.ErrBufferFull) {
			return b, err
		}
		acc = append(acc, b...)
		if len(acc) > MaxRecord+10 {
			return acc, errTooLong
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return acc, err
		}
	}
}

// startsWithRecord reports whether line, a bad line, begins with a whole
// valid record (its checksum matches a payload that ends before the end of
// the line) and goes on after it. The checksum is updated byte by byte, so
// this is linear in the line's length.
func startsWithRecord(line []byte) bool { return recordEnd(line) > 0 }

// recordEnd returns where the whole valid record that line begins with
// ends (the index of the byte after its payload, which the line goes on
// past), or -1 when it does not begin with one.
func recordEnd(line []byte) int {
	want, ok := checksumOf(line)
	if !ok {
		return -1
	}
	var crc uint32
	for i := 9; i < len(line)-1; i++ {
		crc = crc32.Update(crc, castagnoli, line[i:i+1])
		if crc == want {
			return i + 1
		}
	}
	return -1
}

// SplitMerged splits a bad line that begins with a whole valid record
// (two records merged by an overwritten newline, say) into that record,
// returned as a line of its own with its newline, and the rest after the
// byte that should have been the newline. ok is false when line does not
// begin with a valid record.
func SplitMerged(line []byte) (record, rest []byte, ok bool) {
	end := recordEnd(line)
	if end < 0 {
		return nil, nil, false
	}
	record = append(line[:end:end], '\n')
	return record, line[end+1:], true
}

// atEnd reports whether the reader has no bytes left.
func atEnd(r *bufio.Reader) bool {
	_, err := r.Peek(1)
	return errors.Is(err, io.EOF)
}
