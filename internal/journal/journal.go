// Package journal is an append-only file of checksummed records, one per
// line, made durable by group commit: many concurrent Append calls share
// one write and one fsync, and each returns only after its record is on
// disk. A crash can leave at most a torn last line, which Scan reports so
// the owner can cut it away; damage anywhere else is a *CorruptError that
// names the file, line and byte offset.
//
// A line is "<crc32c of payload, 8 hex digits> <payload>\n". The payload is
// any bytes without a newline (compact JSON in practice), so the file stays
// readable with a text editor.
package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"sync"
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

// Encode frames payload as one journal line.
func Encode(payload []byte) ([]byte, error) {
	if bytes.IndexByte(payload, '\n') >= 0 {
		return nil, errors.New("journal record must not contain a newline")
	}
	if len(payload) > MaxRecord {
		return nil, fmt.Errorf("journal record of %d bytes exceeds %d", len(payload), MaxRecord)
	}
	line := make([]byte, 0, len(payload)+10)
	line = fmt.Appendf(line, "%08x ", crc32.Checksum(payload, castagnoli))
	line = append(line, payload...)
	return append(line, '\n'), nil
}

// Scan reads the journal at path from byte offset start, calling fn with
// each record's payload and the offset just past its line. It returns the
// offset where valid records end. When the file ends in a torn record (no
// newline, or a bad last line — what a crash mid-append leaves), end is the
// start of that record and torn is true. The payload passed to fn is valid
// only until fn returns. A bad line followed by more data
// is a *CorruptError. A missing file scans as empty. fn's error stops the
// scan and is returned as is.
func Scan(path string, start int64, fn func(payload []byte, next int64) error) (end int64, torn bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return 0, false, fmt.Errorf("seek journal %s: %w", path, err)
	}
	r := bufio.NewReaderSize(f, 1<<16)
	off := start
	for line := 1; ; line++ {
		b, rerr := readLine(r)
		if len(b) == 0 && errors.Is(rerr, io.EOF) {
			return off, false, nil
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, errTooLong) {
			return off, false, fmt.Errorf("read journal %s: %w", path, rerr)
		}
		payload, reason := decodeLine(b)
		if errors.Is(rerr, errTooLong) {
			reason = fmt.Sprintf("the record is longer than %d bytes", MaxRecord)
		}
		if reason != "" {
			// A bad record with nothing after it is what a crash mid-append
			// leaves; anything else is damage.
			if errors.Is(rerr, io.EOF) || atEnd(r) {
				return off, true, nil
			}
			return off, false, &CorruptError{Path: path, Line: line, Offset: off, Reason: reason}
		}
		next := off + int64(len(b))
		if err := fn(payload, next); err != nil {
			return off, false, err
		}
		off = next
	}
}

var errTooLong = errors.New("line too long")

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

// atEnd reports whether the reader has no bytes left.
func atEnd(r *bufio.Reader) bool {
	_, err := r.Peek(1)
	return errors.Is(err, io.EOF)
}

// decodeLine checks one framed line and returns its payload, or a reason.
func decodeLine(b []byte) ([]byte, string) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, "the last record is incomplete"
	}
	b = b[:len(b)-1]
	if len(b) < 9 || b[8] != ' ' {
		return nil, "the line is not a journal record"
	}
	want, err := strconv.ParseUint(string(b[:8]), 16, 32)
	if err != nil {
		return nil, "the line is not a journal record"
	}
	payload := b[9:]
	if crc32.Checksum(payload, castagnoli) != uint32(want) {
		return nil, "the checksum does not match"
	}
	return payload, ""
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
	err     error // sticky: after a failed write or sync the file is unusable
	closed  bool
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

// Append writes payload as one record and returns once it is on disk
// (fsync'd), sharing the write and fsync with concurrent callers. When ctx
// ends first Append returns ctx's error, and the record may or may not have
// been written. After a failed write or sync every later Append fails: the
// owner must reopen (and Scan) to know what is on disk.
func (w *Writer) Append(ctx context.Context, payload []byte) error {
	line, err := Encode(payload)
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
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
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
		_, err := f.Write(buf)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			err = fmt.Errorf("write journal %s: %w", w.path, err)
		}

		w.mu.Lock()
		if err != nil {
			w.err = err
		} else {
			w.size += int64(len(buf))
		}
		w.mu.Unlock()
		for _, p := range batch {
			p.done <- err
		}
	}
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

// WriteFileAtomic replaces path with data durably: temp file, fsync,
// rename, fsync of the directory. A crash leaves either the old or the new
// content, never a mix.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return SyncDir(path)
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
