package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

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
