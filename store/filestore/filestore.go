// Package filestore is the local tokenledger.Store behind `tokenledger
// serve` with no setup: a human-readable JSON file of events grouped by day
// (docs/file-format.md), an append-only, group-committed journal next to
// it (store/internal/journal), and compaction that folds the journal into the
// file.
//
// Logging an event costs one journal append and one fsync, shared by every
// concurrent Add (the journal's group commit), whatever the size of the
// file. Add returns only after its events are durable, and only then
// counts them in the in-memory aggregates (store/internal/dayagg).
// Compaction rewrites the file atomically in the background once the
// journal has grown as large as the file, so its cost is amortised O(1)
// per event; it also drops days outside the retention window. A process
// lock makes one process the file's only writer.
//
// The files by job: lock.go (the process lock), load.go (Open's reading),
// add.go (Add: idempotency, durability, counting), schedule.go (journal
// rotation and when to compact), compact.go (the fold itself), reset.go
// (Reset and Check). The package also reads the original service's file
// and converts it on the first write; Scan reads either format without
// locking, for migrations; Repair moves a corrupt file aside.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

var (
	_ tokenledger.Store     = (*Store)(nil)
	_ tokenledger.Describer = (*Store)(nil)
)

// DefaultCompactMinBytes is the smallest journal that triggers a
// compaction when Options.CompactBytes is 0: compaction runs once the
// journal holds max(file size, DefaultCompactMinBytes) bytes.
const DefaultCompactMinBytes = 4 << 20

// maxLineEvents bounds the events of one journal line, so that a huge Add
// is written as several lines of bounded size (each made durable before
// the next is written).
const maxLineEvents = 4096

// defaultChunkEvents bounds how many journal events a compaction holds in
// memory at once.
const defaultChunkEvents = 200_000

// Options configure a Store. The zero value is the production setup.
type Options struct {
	// Now is the clock that decides which days are inside the retention
	// window; time.Now when nil.
	Now tokenledger.Clock
	// RetentionDays is R: day D is kept while D ≥ today − R.
	// tokenledger.DefaultRetentionDays when 0.
	RetentionDays int
	// Logger receives warnings (skipped records, a dropped torn journal
	// line, compaction failures) and the conversion notice;
	// slog.Default() when nil.
	Logger *slog.Logger
	// CompactBytes, when positive, makes compaction run whenever the
	// journal reaches this many bytes, instead of the default
	// max(file size, DefaultCompactMinBytes). A value below the file's
	// size makes compaction cost more than O(1) per event; tests use it
	// to compact often.
	CompactBytes int64

	// Version is the format a new file, and a version 1 file at its
	// first open, gets: 2 or 3 (when 0), the snapshot of aggregates with
	// id indexes that opens in seconds at 10^7 events, written as version
	// 3 (a day file per day), or 1, the JSON file of events
	// (docs/file-format.md). A version 2 or 3 file always opens as such,
	// and a version 2 file becomes version 3 at its first checkpoint.
	Version int

	// chunkEvents overrides defaultChunkEvents (tests).
	chunkEvents int
}

// Store is the file-backed tokenledger.Store. It is safe for concurrent
// use; only one Store, in one process, can have a file open at a time.
//
// Locks, taken in this order: wmu (shared by each Add from its check to
// its count, exclusive to rotate the journal, reset or close), then smu
// (the file state), then amu (the aggregates and the Adds in flight).
type Store struct {
	path, dir, base string
	now             tokenledger.Clock
	retention       int
	log             *slog.Logger
	compactBytes    int64
	chunkEvents     int
	version2        bool

	lock      *flock.Flock
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	wmu sync.RWMutex
	// omu guards the creation of w by an Add holding wmu shared.
	omu sync.Mutex
	w   *journal.Writer // the active journal, nil until its first line
	seq uint64          // the active journal's sequence number
	// syncs counts the fsyncs of journals no longer active (benchmarks).
	syncs atomic.Int64

	smu sync.Mutex
	// kind, folded, snapBytes and snapOldest describe the usage file.
	kind       fileKind
	folded     uint64
	snapBytes  int64
	snapOldest tokenledger.Date
	// unfolded counts the bytes of journals not yet folded into the file.
	unfolded int64
	// retryAt delays the next compaction after a failed one.
	retryAt int64
	// broken is set when the journal could not be made durable; every
	// later write fails with it.
	broken        error
	compacting    bool
	compactCancel context.CancelFunc
	compactDone   chan struct{}
	// covered and checkpoints describe a version 2 file: the last journal
	// its aggregates hold, and the sealed journals with their id indexes.
	covered     uint64
	checkpoints []checkpoint
	// dayFiles names the day file of each day the version 3 manifest
	// holds, and gen is the manifest's generation.
	dayFiles map[tokenledger.Date]dayFile
	gen      uint64
	// uncovered is the first journal no checkpoint holds.
	uncovered uint64
	// pendingIDs are ids sealed by checkpoints whose index was not
	// written; the next checkpoint's index holds them (wmu exclusive).
	pendingIDs []map[tokenledger.Date]dayagg.IDs

	amu      sync.RWMutex
	agg      *dayagg.Set
	inflight inflight
}

// Open opens (or creates) the usage file at path, taking its process lock,
// creating the parent directory when missing, and loading the file and its
// journals into memory. It refuses, changing nothing, a file that is
// locked (ErrLocked), corrupt (*CorruptError) or of an unknown version
// (ErrUnknownVersion). A file in the original service's format is read as
// is and converted on the first write.
func Open(path string, o Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open token usage file: the path is empty")
	}
	path = filepath.Clean(path)
	s := &Store{
		path: path, dir: filepath.Dir(path), base: filepath.Base(path),
		now: o.Now, retention: o.RetentionDays, log: o.Logger,
		compactBytes: o.CompactBytes, chunkEvents: o.chunkEvents, version2: o.Version != 1,
		agg: dayagg.New(), inflight: newInflight(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.retention == 0 {
		s.retention = tokenledger.DefaultRetentionDays
	}
	if s.retention < 1 || s.retention > tokenledger.MaxRetentionDays {
		return nil, fmt.Errorf("open token usage file: retention must be 1 to %d days, not %d", tokenledger.MaxRetentionDays, s.retention)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if o.Version < 0 || o.Version > 3 {
		return nil, fmt.Errorf("open token usage file: the format version must be 1, 2 or 3, not %d", o.Version)
	}
	if s.chunkEvents <= 0 {
		s.chunkEvents = defaultChunkEvents
	}
	if err := journal.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("open token usage file: %w", err)
	}
	lk, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	s.lock = lk
	if err := s.load(); err != nil {
		lk.Close()
		return nil, err
	}
	return s, nil
}

// oldest returns the oldest day kept: today − R.
func (s *Store) oldest() tokenledger.Date {
	return tokenledger.DateOf(s.now()).AddDays(-s.retention)
}

// Days returns the days in [q.From, q.To] inside the retention window that
// hold usage, oldest first, from memory. It returns the context's error
// when ctx has ended and ErrClosed after Close.
func (s *Store) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, tokenledger.ErrClosed
	}
	if oldest := s.oldest(); q.From < oldest {
		q.From = oldest
	}
	if q.From > q.To {
		return nil, nil
	}
	s.amu.RLock()
	defer s.amu.RUnlock()
	return s.agg.Days(q), nil
}

// Close stops accepting writes, waits for the writes in flight, folds the
// journal into the file (dropping expired days), and releases the lock.
// Every acknowledged event is already durable in the journal, so an error
// from the final compaction loses nothing; it is returned all the same.
// Closing twice is fine; after Close every method returns ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.close()
	})
	return s.closeErr
}

// close is Close, once.
func (s *Store) close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.smu.Lock()
	done := s.compactDone
	s.smu.Unlock()
	if done != nil {
		<-done // a compaction needs neither wmu nor the journal to finish
	}
	var errs []error
	s.smu.Lock()
	due := s.broken == nil && (s.unfolded > 0 || (s.kind == kindOurs || s.kind == kindV2) && s.snapOldest != "" && s.snapOldest < s.oldest())
	if due && s.kind == kindV2 {
		due = false
		s.smu.Unlock()
		if err := s.checkpointLocked(s.uncovered, nil); err != nil {
			errs = append(errs, s.closeCheckpointError(err))
		}
		s.smu.Lock()
	}
	var p foldParams
	upTo := uint64(0)
	if due {
		upTo = s.rotateLocked()
		p = s.foldParams(upTo)
	}
	s.smu.Unlock()
	if due {
		out, err := foldJournals(context.Background(), p)
		switch {
		case err != nil && journal.DiskProblem(err) != "":
			// Nothing is missing: the journal holds every event and the
			// next open folds it. A full or read-only disk is not a
			// failure of the close.
			s.log.Warn("the token usage file was not compacted on close because its disk is "+journal.DiskProblem(err)+"; the journal keeps every event and the next start folds it", "file", s.path, "err", err)
		case err != nil:
			errs = append(errs, fmt.Errorf("close token usage file %s: compact (the journal still holds every event): %w", s.path, err))
		default:
			s.applyFold(upTo, out, 0)
			s.afterFold(upTo, out)
		}
	}
	if s.w != nil {
		if err := s.w.Close(); err != nil && s.w.Err() == nil {
			errs = append(errs, err)
		}
		s.w = nil
	}
	s.amu.Lock()
	s.agg.Reset()
	s.amu.Unlock()
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("unlock token usage file: %w", err))
	}
	return errors.Join(errs...)
}

// Info describes the store: a local file.
func (s *Store) Info() tokenledger.StoreInfo {
	return tokenledger.StoreInfo{Kind: "file", Database: false, Location: s.path}
}
