package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// segmentLimit is the size at which the spool starts a new segment file,
// so that delivered segments can be deleted whole. Tests lower it.
var segmentLimit int64 = 4 << 20

// ErrSpoolInUse is matched by the error of OpenSpool when another process
// holds the spool directory.
var ErrSpoolInUse = errors.New("the spool is in use")

// spoolInUse is the sentence of ErrSpoolInUse for dir.
type spoolInUse string

func (d spoolInUse) Error() string {
	return "the spool " + string(d) + " is in use by another tokenledger process; stop that process or give this one its own spool directory"
}

func (d spoolInUse) Is(target error) bool { return target == ErrSpoolInUse }

// Spool is a durable, ordered queue of events on the local disk: a
// directory of journal segments ("<seq>.spool", one record per batch, see
// record) and a cursor file naming the first record not yet delivered. Append returns only after the events are fsync'd.
// One process owns a spool directory at a time.
type Spool struct {
	dir  string
	lock *flock.Flock

	mu      sync.RWMutex // write lock to rotate the active segment
	w       *journal.Writer
	seq     int64        // active segment
	pending atomic.Int64 // events appended and not yet acknowledged
	cursor  position
	closed  bool

	rejectMu  sync.Mutex      // guards rejectW and rejectEnd
	rejectW   *journal.Writer // the rejected file, opened on its first record
	rejectEnd int64           // where its valid records end, as load found it
	rejected  atomic.Int64    // records in the rejected file

	now func() time.Time // stamps each record; time.Now unless New sets it
}

// RejectedFile is the file in the spool directory that keeps the spooled
// events the database refused for themselves (see Spool.reject).
const RejectedFile = "rejected.journal"

// position is a place in the spool: a segment and a byte offset in it.
type position struct {
	Segment int64 `json:"segment"`
	Offset  int64 `json:"offset"`
}

// OpenSpool opens (creating when missing) the spool in dir and counts the
// events waiting in it. A torn last record (a crash mid-append, never
// acknowledged) is cut away; damage anywhere else is refused with an error
// naming the file and offset, and nothing is changed. A second process
// opening the same dir gets an error saying the spool is in use.
func OpenSpool(dir string) (*Spool, error) {
	if err := journal.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	lk := flock.New(filepath.Join(dir, "lock"))
	ok, err := lk.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock spool %s: %w", dir, err)
	}
	if !ok {
		return nil, spoolInUse(dir)
	}
	s := &Spool{dir: dir, lock: lk, now: time.Now}
	if err := s.load(); err != nil {
		lk.Unlock()
		return nil, err
	}
	return s, nil
}

// load reads the cursor, counts pending events and opens the active segment.
func (s *Spool) load() error {
	segs, err := s.segments()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(s.cursorPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		if len(segs) > 0 {
			s.cursor = position{Segment: segs[0]}
		}
	case err != nil:
		return fmt.Errorf("read spool cursor: %w", err)
	default:
		if err := json.Unmarshal(b, &s.cursor); err != nil || s.cursor.Segment < 0 || s.cursor.Offset < 0 {
			return fmt.Errorf("the spool cursor %s is damaged (%q); move the spool directory aside to start again", s.cursorPath(), truncate(string(b)))
		}
	}
	var lastEnd int64
	for i, seq := range segs {
		if seq < s.cursor.Segment {
			continue // delivered; its deletion was interrupted
		}
		start := int64(0)
		if seq == s.cursor.Segment {
			start = s.cursor.Offset
		}
		end, torn, err := journal.Scan(s.segPath(seq), start, func(p []byte, _ int64) error {
			n, err := countEvents(p)
			if err != nil {
				return fmt.Errorf("a spool record in %s does not hold events: %w", s.segPath(seq), err)
			}
			s.pending.Add(int64(n))
			return nil
		})
		if err != nil {
			return err
		}
		if torn != nil && i < len(segs)-1 {
			// Only the newest segment can have been cut short by a crash.
			return fmt.Errorf("spool segment %s ends in a damaged record (byte offset %d) but is not the newest; move the spool directory aside to start again", s.segPath(seq), end)
		}
		lastEnd = end
	}
	// Remove segments wholly before the cursor.
	for _, seq := range segs {
		if seq < s.cursor.Segment {
			if err := os.Remove(s.segPath(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove delivered spool segment: %w", err)
			}
		}
	}
	if len(segs) == 0 || segs[len(segs)-1] < s.cursor.Segment {
		s.seq = s.cursor.Segment
		lastEnd = 0
		if s.seq == 0 {
			s.seq = 1
			s.cursor = position{Segment: 1}
		}
	} else {
		s.seq = segs[len(segs)-1]
	}
	w, err := journal.OpenWriter(s.segPath(s.seq), lastEnd)
	if err != nil {
		return err
	}
	s.w = w
	// The rejected file is only counted here; a torn last record (a crash
	// while setting an event aside, whose cursor never moved) is cut when
	// it is next written to, and the event is set aside again.
	s.rejectEnd, _, err = journal.Scan(s.rejectedPath(), 0, func([]byte, int64) error {
		s.rejected.Add(1)
		return nil
	})
	if err != nil {
		w.Close()
		return fmt.Errorf("read the spool's rejected events: %w", err)
	}
	return nil
}

func (s *Spool) rejectedPath() string { return filepath.Join(s.dir, RejectedFile) }

// Rejected returns how many events the spool has set aside (see reject).
func (s *Spool) Rejected() int { return int(s.rejected.Load()) }

// rejectedRecord is one line of the rejected file.
type rejectedRecord struct {
	At     time.Time         `json:"at"`
	Reason string            `json:"reason"`
	Event  tokenledger.Event `json:"event"`
}

// reject keeps e, a spooled event the database refuses for itself (it
// would take a day's counter past its bound: the same answer on every
// attempt), durably in the rejected file with the reason, so that the
// events behind it can be delivered. It returns once the record is on
// disk; the caller acknowledges e in the spool only after that.
func (s *Spool) reject(ctx context.Context, e tokenledger.Event, reason string) error {
	e.Metadata = nil
	payload, err := json.Marshal(rejectedRecord{At: time.Now().UTC(), Reason: reason, Event: e})
	if err != nil {
		return fmt.Errorf("encode a rejected event: %w", err)
	}
	s.rejectMu.Lock()
	defer s.rejectMu.Unlock()
	if s.rejectW == nil {
		w, err := journal.OpenWriter(s.rejectedPath(), s.rejectEnd)
		if err != nil {
			return err
		}
		s.rejectW = w
	}
	if err := s.rejectW.Append(ctx, payload); err != nil {
		return fmt.Errorf("keep a rejected event: %w", err)
	}
	s.rejected.Add(1)
	return nil
}

func (s *Spool) segments() ([]int64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read spool directory: %w", err)
	}
	var segs []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".spool")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(name, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("the spool directory %s holds a file it did not write: %s", s.dir, e.Name())
		}
		segs = append(segs, n)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	return segs, nil
}

func (s *Spool) segPath(seq int64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016d.spool", seq))
}

func (s *Spool) cursorPath() string { return filepath.Join(s.dir, "cursor") }

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Pending returns how many events wait to be delivered.
func (s *Spool) Pending() int { return int(s.pending.Load()) }

// Append stores events durably (fsync'd, group-committed with concurrent
// callers) and returns nil only once they are on disk. Metadata is not
// kept. On error the caller must not acknowledge them. A ctx error means
// they were never queued (journal.Writer.Append waits for the commit of a
// queued record even when ctx ends), so the pending count stays exact;
// a failed write (a full or read-only disk) is cut off again, so the
// spool takes events once the disk does; after a failed sync it takes
// nothing more until it is reopened, which counts what is on disk.
func (s *Spool) Append(ctx context.Context, events []tokenledger.Event) error {
	payload, err := encodeRecord(s.now(), events)
	if err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return tokenledger.ErrClosed
	}
	w := s.w
	err = w.Append(ctx, payload)
	if err == nil {
		s.pending.Add(int64(len(events)))
	}
	full := w.Size() >= segmentLimit
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("write spool: %w", err)
	}
	if full {
		s.rotate(w)
	}
	return nil
}

// rotate starts a new segment if w is still the active one.
func (s *Spool) rotate(w *journal.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != w || s.closed {
		return
	}
	next, err := journal.OpenWriter(s.segPath(s.seq+1), 0)
	if err != nil {
		return // keep appending to the current segment; try again later
	}
	_ = w.Close()
	s.w = next
	s.seq++
}

// next reads records holding up to max events from the cursor on, in
// order, and returns them with the position just past the last record
// read and the number of events they hold. It never splits a record, so
// it may return more than max events when one record is larger.
func (s *Spool) next(max int) ([]record, position, int, error) {
	s.mu.RLock()
	cur, active, limit := s.cursor, s.seq, s.w.Size()
	s.mu.RUnlock()
	var out []record
	n := 0
	pos := cur
	errFull := errors.New("full")
	for seq := cur.Segment; seq <= active && n < max; seq++ {
		start := int64(0)
		if seq == cur.Segment {
			start = cur.Offset
		}
		_, _, err := journal.Scan(s.segPath(seq), start, func(p []byte, next int64) error {
			if seq == active && next > limit {
				return errFull // not yet committed
			}
			r, err := decodeRecord(p)
			if err != nil {
				return fmt.Errorf("read spool %s: %w", s.segPath(seq), err)
			}
			out = append(out, r)
			n += len(r.Events)
			pos = position{Segment: seq, Offset: next}
			if n >= max {
				return errFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errFull) {
			return nil, cur, 0, err
		}
		if n < max && seq < active {
			// Segment read to its end: continue at the start of the next.
			pos = position{Segment: seq + 1}
		}
	}
	return out, pos, n, nil
}

// ack records that everything before pos (n events) was delivered: the
// cursor moves durably, then wholly delivered segments are removed.
func (s *Spool) ack(pos position, n int) error {
	b, _ := json.Marshal(pos)
	if err := journal.WriteFileAtomic(s.cursorPath(), b); err != nil {
		return fmt.Errorf("move spool cursor: %w", err)
	}
	// Taking the write lock waits for every Append in progress: each holds
	// the read lock until its events are counted, so a record delivered
	// the moment it was committed is counted before it is subtracted here,
	// and the count never reads below what waits on disk.
	s.mu.Lock()
	old := s.cursor.Segment
	s.cursor = pos
	s.mu.Unlock()
	s.pending.Add(-int64(n))
	for seq := old; seq < pos.Segment; seq++ {
		if err := os.Remove(s.segPath(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove delivered spool segment: %w", err)
		}
	}
	return nil
}

// clear drops every pending event (used by Reset).
func (s *Spool) clear() error {
	for {
		_, pos, n, err := s.next(1 << 30)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if err := s.ack(pos, n); err != nil {
			return err
		}
	}
}

// Close closes the active segment and releases the directory lock.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.w.Close()
	s.rejectMu.Lock()
	if s.rejectW != nil {
		err = errors.Join(err, s.rejectW.Close())
	}
	s.rejectMu.Unlock()
	if uerr := s.lock.Unlock(); err == nil && uerr != nil {
		err = fmt.Errorf("unlock spool: %w", uerr)
	}
	return err
}

// record is one spool record: a batch of events as one Append took them,
// and when (Unix milliseconds, by this instance's clock: see since). Records written
// before the time was kept are a bare JSON array of events; they read
// with At 0.
type record struct {
	At     int64               `json:"at"`
	Events []tokenledger.Event `json:"events"`
	// batch is Events as checked by decodeRecord.
	batch tokenledger.Batch
}

// encodeRecord makes the spool record for events appended at: the events
// without metadata, and the time.
func encodeRecord(at time.Time, events []tokenledger.Event) ([]byte, error) {
	r := record{At: at.UnixMilli(), Events: make([]tokenledger.Event, len(events))}
	for i, e := range events {
		e.Metadata = nil
		r.Events[i] = e
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode events for the spool: %w", err)
	}
	return b, nil
}

// decodeRecord reads a spool record, either form, and checks its events.
func decodeRecord(p []byte) (record, error) {
	var r record
	var err error
	if len(p) > 0 && p[0] == '[' {
		err = json.Unmarshal(p, &r.Events)
	} else {
		err = json.Unmarshal(p, &r)
	}
	if err != nil || r.At < 0 {
		return record{}, fmt.Errorf("a spool record does not hold events (%v)", err)
	}
	if r.batch, err = tokenledger.StoredBatch(r.Events); err != nil {
		return record{}, fmt.Errorf("a spool record holds an invalid event (%v)", err)
	}
	return r, nil
}

// countEvents returns how many events the spool record p holds, without
// reading them.
func countEvents(p []byte) (int, error) {
	var evs []json.RawMessage
	if len(p) > 0 && p[0] == '[' {
		if err := json.Unmarshal(p, &evs); err != nil {
			return 0, err
		}
		return len(evs), nil
	}
	var r struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(p, &r); err != nil {
		return 0, err
	}
	return len(r.Events), nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
