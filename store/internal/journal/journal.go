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
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
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

// Writer appends records to one journal file with group commit.
type Writer struct {
	path string

	mu      sync.Mutex // guards the fields below
	idle    *sync.Cond // signalled when a commit ends
	f       *os.File
	size    int64
	queue   []*pending
	writing bool
	err     error // sticky: after a failed sync (or a failed cut) the file's state is unknown
	closed  bool
	syncs   atomic.Int64
}

type pending struct {
	line []byte
	done chan error
}

// OpenWriter opens path for appending, creating it (and syncing its
// directory) when missing. size must be the offset where valid records end,
// as returned by Scan; anything after it (a torn record) is cut away first.
func OpenWriter(path string, size int64) (*Writer, error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat journal: %w", err)
	}
	if fi.Size() != size {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("cut torn record from journal %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("sync journal %s: %w", path, err)
		}
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek journal %s: %w", path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := SyncDir(path); err != nil {
			f.Close()
			return nil, err
		}
	}
	w := &Writer{path: path, f: f, size: size}
	w.idle = sync.NewCond(&w.mu)
	return w, nil
}

// Path returns the journal's path.
func (w *Writer) Path() string { return w.path }

// Size returns the journal's length in bytes, records in flight excluded.
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Err returns the error that broke the writer (a failed sync, or a failed
// write that could not be cut off), after which every Append fails, or
// nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Syncs returns how many fsyncs the writer has made (one per commit).
func (w *Writer) Syncs() int64 { return w.syncs.Load() }

// Append writes payload as one record and returns once it is on disk
// (fsync'd), sharing the write and fsync with concurrent callers. ctx is
// checked only before the record is queued: once queued, Append waits for
// the commit that carries it, so a nil error means the record is on disk
// and an error means it is not (an owner counting records stays exact;
// returning early on ctx would leave the caller not knowing). A failed
// write is cut off and later Appends may succeed; after a failed sync
// every later Append fails: the owner must reopen (and Scan) to know what
// is on disk.
func (w *Writer) Append(ctx context.Context, payload []byte) error {
	line, err := AppendRecord(make([]byte, 0, len(payload)+10), payload)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := &pending{line: line, done: make(chan error, 1)}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("journal is closed")
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.queue = append(w.queue, p)
	lead := !w.writing
	if lead {
		w.writing = true
	}
	w.mu.Unlock()
	if lead {
		w.commit()
	}
	return <-p.done
}

// commit writes and syncs queued records until the queue is empty. Only
// one goroutine (the leader) runs it at a time.
func (w *Writer) commit() {
	for {
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		if len(batch) == 0 || w.err != nil {
			for _, p := range batch {
				p.done <- w.err
			}
			w.writing = false
			w.idle.Broadcast()
			w.mu.Unlock()
			return
		}
		f := w.f
		w.mu.Unlock()

		var buf []byte
		for _, p := range batch {
			buf = append(buf, p.line...)
		}
		sticky, err := w.write(f, buf)
		w.mu.Lock()
		switch {
		case sticky:
			w.err = err
		case err == nil:
			w.size += int64(len(buf))
		}
		w.mu.Unlock()
		for _, p := range batch {
			p.done <- err
		}
	}
}

// write appends buf at w.size and syncs it. A failed write (a full or
// read-only disk) is cut off again, so the journal stays clean and the
// next commit may succeed once the disk takes data; sticky reports a
// failure that leaves the file's state unknown (a failed fsync, or a cut
// that failed), after which the writer refuses everything.
func (w *Writer) write(f *os.File, buf []byte) (sticky bool, err error) {
	if n, err := f.Write(buf); err != nil {
		err = fmt.Errorf("write journal %s: %w", w.path, err)
		if n == 0 {
			return false, err // nothing to cut (a read-only disk could not be cut)
		}
		if terr := f.Truncate(w.size); terr != nil {
			return true, fmt.Errorf("%w; cutting it off again failed too: %w", err, terr)
		}
		if _, serr := f.Seek(w.size, io.SeekStart); serr != nil {
			return true, fmt.Errorf("%w; seeking back failed too: %w", err, serr)
		}
		return false, err
	}
	w.syncs.Add(1)
	if err := f.Sync(); err != nil {
		return true, fmt.Errorf("sync journal %s: %w", w.path, err)
	}
	return false, nil
}

// Close waits for records in flight and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.writing {
		w.idle.Wait()
	}
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close journal %s: %w", w.path, err)
	}
	return w.err
}

// MkdirAll creates dir and any missing parents, like os.MkdirAll, and
// fsyncs the parent of every directory it creates, so that a file made
// durable inside dir cannot vanish with its directory in a crash.
func MkdirAll(dir string, perm os.FileMode) error {
	var missing []string // innermost first
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("create directory %s: %s is not a directory", dir, d)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("create directory %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, perm); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
		// Synced even when another process made d meanwhile: its entry
		// must be durable before anything inside it is acknowledged.
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// syncDir is SyncDir; tests replace it to see which directories are synced.
var syncDir = SyncDir

// SyncDir fsyncs the directory holding path, so that a create, rename or
// remove in it survives a crash.
func SyncDir(path string) error {
	dir := dirOf(path)
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic replaces path with data durably through the temp file
// "<path>.tmp" (see AtomicFile). A crash leaves either the old or the new
// content, never a mix.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	a := &AtomicFile{f: f, path: path}
	defer a.Discard()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return a.Commit()
}

// AtomicFile is the new content of a file, written under a temporary name
// in the same directory and put in place by Commit: fsync, close, rename
// over the file, fsync of the directory. Until the rename the old file is
// untouched; a crash leaves at worst the temp file behind, for its owner
// to recognise by name and remove.
type AtomicFile struct {
	f         *os.File
	path      string
	closed    bool
	closeErr  error // what Close returned
	committed bool
}

// CreateAtomic starts replacing path with a temp file in path's directory
// named after pattern as os.CreateTemp names it (the last "*" becomes a
// random string), with permissions perm. Defer Discard.
func CreateAtomic(path, pattern string, perm os.FileMode) (*AtomicFile, error) {
	f, err := os.CreateTemp(dirOf(path), pattern)
	if err != nil {
		return nil, err
	}
	a := &AtomicFile{f: f, path: path}
	if err := f.Chmod(perm); err != nil {
		a.Discard()
		return nil, fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	return a, nil
}

// File returns the temp file, to write the new content to.
func (a *AtomicFile) File() *os.File { return a.f }

// Close makes the content written so far durable and closes the temp
// file, without putting it in place yet (Commit does that).
func (a *AtomicFile) Close() error {
	if a.closed {
		return a.closeErr
	}
	a.closed = true
	if err := a.f.Sync(); err != nil {
		a.f.Close()
		a.closeErr = fmt.Errorf("sync %s: %w", a.f.Name(), err)
	} else if err := a.f.Close(); err != nil {
		a.closeErr = fmt.Errorf("close %s: %w", a.f.Name(), err)
	}
	return a.closeErr
}

// Commit closes the temp file as Close does, renames it over the path and
// fsyncs the directory. After a failed rename the old file is in place.
func (a *AtomicFile) Commit() error {
	if err := a.Close(); err != nil {
		return err
	}
	if err := os.Rename(a.f.Name(), a.path); err != nil {
		return fmt.Errorf("rename %s: %w", a.f.Name(), err)
	}
	a.committed = true
	return SyncDir(a.path)
}

// Discard closes and removes the temp file unless Commit renamed it. It
// is safe to defer right after creating the file.
func (a *AtomicFile) Discard() {
	if a.committed {
		return
	}
	if !a.closed {
		a.closed = true
		a.f.Close()
	}
	os.Remove(a.f.Name())
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			if i == 0 {
				return path[:1]
			}
			return path[:i]
		}
	}
	return "."
}

// DiskProblem names what is wrong with the disk when err says it cannot
// take data: "full" (no space, or the quota is used up), "read-only", or
// "" for any other error. Callers turn it into the sentence users see,
// because what they can do about it differs from an outage.
func DiskProblem(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "full"
	case errors.Is(err, syscall.EROFS):
		return "read-only"
	}
	return ""
}
