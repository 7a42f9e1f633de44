// Package filestore is the local tokenledger.Store behind `tokenledger
// serve` with no setup: a human-readable JSON file of events grouped by day
// (docs/file-format.md), an append-only, group-committed journal next to
// it, and compaction that folds the journal into the file.
//
// Logging an event costs one journal append and one fsync, shared by every
// concurrent Add (group commit), whatever the size of the file. Add
// returns only after its batch is durable, and only then counts it in the
// in-memory aggregates (a memstore.Store). Compaction rewrites the file
// atomically (temp file, fsync, rename, fsync of the directory) in the
// background once the journal has grown as large as the file, so its cost
// is amortised O(1) per event; it also drops days outside the retention
// window. A process lock makes one process the file's only writer.
//
// The package also reads the original service's file (a JSON array of
// records) and converts it on the first write, keeping the original as a
// backup. Scan reads either format without locking, for migrations;
// Repair moves a corrupt file aside.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
	"github.com/tokenledger/tokenledger/store/memstore"
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

// maxGroupEvents is how many events one group commit gathers from
// concurrent Adds before it writes them (one more Add may take it past).
const maxGroupEvents = maxLineEvents

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

	// chunkEvents overrides defaultChunkEvents (tests).
	chunkEvents int
}

// Store is the file-backed tokenledger.Store. It is safe for concurrent
// use; only one Store, in one process, can have a file open at a time.
type Store struct {
	path, dir, base string
	now             tokenledger.Clock
	retention       int
	log             *slog.Logger
	compactBytes    int64
	chunkEvents     int

	lock *flock.Flock
	mem  *memstore.Store

	closed    atomic.Bool
	reqs      chan *request
	quit      chan struct{}
	runDone   chan struct{}
	closeOnce sync.Once
	closeErr  error

	// wmu guards the journal and the file state below. The committer
	// holds it for one group commit; Reset and compaction take it briefly.
	wmu  sync.Mutex
	jf   *os.File // the active journal, nil until its first line
	joff int64    // the active journal's length
	seq  uint64   // the active journal's sequence number
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
	// batchBuf and lineBuf are reused for each line's payload and framing.
	batchBuf, lineBuf []byte
	// syncs counts journal fsyncs (benchmarks report events per fsync).
	syncs atomic.Int64
	seen  map[dayID]struct{}
	fresh []tokenledger.Event
}

// dayID is the idempotency key of an event.
type dayID struct {
	day tokenledger.Date
	id  string
}

// request is one Add waiting for its group commit.
type request struct {
	events []tokenledger.Event
	res    tokenledger.AddResult
	err    error
	done   chan struct{}
}

// sentinelError is an error with its own message that matches a sentinel.
type sentinelError struct {
	sentinel error
	msg      string
}

func (e *sentinelError) Error() string        { return e.msg }
func (e *sentinelError) Is(target error) bool { return target == e.sentinel }

// unavailable wraps err as tokenledger.ErrUnavailable with context.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{tokenledger.ErrUnavailable}, args...)...)
}

// writeFailed is unavailable for a failed journal write, with a sentence
// for callers when the disk is full or read-only: what they can do about
// it differs from an outage, and the generic answer would hide it.
func writeFailed(cause error, format string, args ...any) error {
	err := unavailable(format, args...)
	why := journal.DiskProblem(cause)
	if why == "" {
		return err
	}
	return &tokenledger.UnavailableError{Msg: "Nothing was stored: the disk that holds the usage file is " + why + "; logging resumes by itself once it can be written", Err: err}
}

// Lock takes the process lock of the usage file at path, as Open does,
// for a program that must keep every file store off the file while it
// works on it (a migration, which renames the file and its journals). It
// returns ErrLocked when a store or another such program holds it, and
// the function that releases it.
func Lock(path string) (unlock func() error, err error) {
	lk, err := lockFile(filepath.Clean(path))
	if err != nil {
		return nil, err
	}
	return lk.Close, nil
}

// lockFile takes the process lock of the usage file at path.
func lockFile(path string) (*flock.Flock, error) {
	lk := flock.New(path + ".lock")
	ok, err := lk.TryLock()
	if err != nil {
		lk.Close()
		return nil, fmt.Errorf("lock token usage file %s: %w", path, err)
	}
	if !ok {
		lk.Close()
		return nil, &sentinelError{ErrLocked, fmt.Sprintf(
			"token usage file %s is in use by another tokenledger process (it holds %s.lock); stop that process or use another file",
			path, path)}
	}
	return lk, nil
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
		compactBytes: o.CompactBytes, chunkEvents: o.chunkEvents,
		reqs: make(chan *request), quit: make(chan struct{}), runDone: make(chan struct{}),
		seen: map[dayID]struct{}{},
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
	s.mem = memstore.New(s.now, s.retention)
	if err := s.load(); err != nil {
		lk.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

// oldest returns the oldest day kept: today − R.
func (s *Store) oldest() tokenledger.Date {
	return tokenledger.DateOf(s.now()).AddDays(-s.retention)
}

// load reads the file and its journals into s.mem, then tidies what a
// crash can leave behind: journals already folded into the file, an
// incomplete last journal line, temporary files.
func (s *Store) load() error {
	var res ScanResult
	sc, err := scanFiles(s.path, s.now(), s.oldest(), 4096, &res, func(evs []tokenledger.Event) error {
		b, err := tokenledger.StoredBatch(evs)
		if err != nil {
			return err
		}
		r, err := s.mem.Add(context.Background(), b)
		if err != nil {
			return err
		}
		for _, n := range r.New {
			if n {
				res.Valid++
			} else {
				res.Duplicates++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, j := range sc.stale {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) && journal.DiskProblem(err) != "read-only" {
			return fmt.Errorf("remove folded journal: %w", err)
		}
	}
	s.removeTemporaries()

	s.kind, s.folded, s.snapBytes, s.snapOldest = sc.kind, sc.folded, sc.snapSize, sc.firstDay
	s.unfolded = sc.unfoldedBytes
	s.seq = sc.folded + 1
	if n := len(sc.journals); n > 0 {
		last := sc.journals[n-1]
		f, err := os.OpenFile(last.path, os.O_WRONLY, 0)
		if err != nil && res.TornTail == nil && journal.DiskProblem(err) == "read-only" {
			// Serve what is there: writes are refused while the disk is
			// read-only, and the first one after it is writable again
			// starts the next journal.
			s.seq = last.seq + 1
			s.log.Warn("the disk that holds the token usage file is read-only: reports are served, writes are refused until it can be written", "file", s.path)
			return s.loaded(&res, len(sc.journals))
		}
		if err != nil {
			return fmt.Errorf("open journal: %w", err)
		}
		if res.TornTail != nil {
			// The incomplete line was never acknowledged: cut it off so
			// the next line starts on a clean line.
			if err := f.Truncate(sc.lastValidEnd); err == nil {
				err = f.Sync()
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("truncate the incomplete last line of journal %s: %w", last.path, err)
			}
			s.log.Warn("dropped the incomplete last line of the token usage journal: a crash cut its write short, so it was never acknowledged",
				"journal", last.path, "offset", res.TornTail.Offset, "bytes", res.TornTail.Bytes)
		}
		if _, err := f.Seek(sc.lastValidEnd, io.SeekStart); err != nil {
			f.Close()
			return fmt.Errorf("open journal: %w", err)
		}
		s.jf, s.joff, s.seq = f, sc.lastValidEnd, last.seq
	}
	return s.loaded(&res, len(sc.journals))
}

// loaded logs what load found and starts a compaction when one is due.
func (s *Store) loaded(res *ScanResult, journals int) error {
	for _, r := range res.InvalidRecords {
		s.log.Warn("skipped an invalid record of the token usage file", "file", s.path, "index", r.Index, "id", r.ID, "reason", r.Reason)
	}
	s.log.Info("token usage file loaded", "file", s.path, "format", res.Format,
		"events", res.Valid, "expired", res.Expired, "invalid", res.Invalid, "duplicates", res.Duplicates,
		"journals", journals)

	s.wmu.Lock()
	s.maybeCompactLocked()
	s.wmu.Unlock()
	return nil
}

// removeTemporaries removes temporary files a crash may have left: an
// unfinished compaction's output and Check's probes.
func (s *Store) removeTemporaries() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, s.base+".tmp-") || strings.HasPrefix(n, "."+s.base+".check-") {
			_ = os.Remove(filepath.Join(s.dir, n))
		}
	}
}

// Add counts every event whose (day, id) is new, after writing the new
// ones to the journal and making them durable: concurrent calls share one
// write and one fsync. It returns the context's error when ctx ends (events already
// handed to the journal may still be counted); ErrUnavailable (wrapped)
// when the journal cannot be written; ErrClosed after Close.
func (s *Store) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	events := batch.Events()
	if err := ctx.Err(); err != nil {
		return tokenledger.AddResult{}, err
	}
	if s.closed.Load() {
		return tokenledger.AddResult{}, tokenledger.ErrClosed
	}
	if len(events) == 0 {
		return tokenledger.AddResult{New: []bool{}}, nil
	}
	evs := make([]tokenledger.Event, len(events))
	for i := range events {
		evs[i] = events[i]
		evs[i].Metadata = nil // the file keeps no metadata (docs/file-format.md)
	}
	r := &request{events: evs, done: make(chan struct{})}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return tokenledger.AddResult{}, tokenledger.ErrClosed
	case <-ctx.Done():
		return tokenledger.AddResult{}, ctx.Err()
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return tokenledger.AddResult{}, ctx.Err()
	}
}

// run is the committer: it gathers the Adds waiting to be written into one
// group and commits it, until Close.
func (s *Store) run() {
	defer close(s.runDone)
	var group []*request
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.quit:
			return
		}
		group = append(group[:0], first)
		n := len(first.events)
	gather:
		for n < maxGroupEvents {
			select {
			case r := <-s.reqs:
				group = append(group, r)
				n += len(r.events)
			default:
				break gather
			}
		}
		s.commit(group)
		for i, r := range group {
			close(r.done)
			group[i] = nil
		}
	}
}

// commit writes the new events of group to the journal, makes them
// durable, then counts them in memory and sets each request's result.
func (s *Store) commit(group []*request) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.broken != nil {
		for _, r := range group {
			r.err = s.broken
		}
		return
	}
	if len(s.seen) > 1024 {
		s.seen = map[dayID]struct{}{} // clearing a big map costs its size each time
	} else {
		clear(s.seen)
	}
	fresh := s.fresh[:0]
	// planned holds, per day, the counters stored plus those of the
	// requests admitted so far, so that each request is checked against
	// what the group will have written before it.
	planned := map[tokenledger.Date]*tokenledger.Day{}
	for _, r := range group {
		r.res.New = make([]bool, len(r.events))
		start := len(fresh)
		var trial map[tokenledger.Date]*tokenledger.Day
		var err error
		for i := range r.events {
			e := &r.events[i]
			date := e.Day()
			k := dayID{date, e.ID}
			if _, dup := s.seen[k]; dup || s.mem.Has(e) {
				continue
			}
			if trial == nil {
				trial = map[tokenledger.Date]*tokenledger.Day{}
			}
			if trial[date] == nil {
				if p := planned[date]; p != nil {
					c := *p
					trial[date] = &c
				}
			}
			if err = s.mem.CheckRoom(trial, e); err != nil {
				break
			}
			s.seen[k] = struct{}{}
			r.res.New[i] = true
			fresh = append(fresh, *e)
		}
		if err != nil {
			// Refuse the whole request: forget its events, keep the others.
			for i := range fresh[start:] {
				delete(s.seen, dayID{fresh[start+i].Day(), fresh[start+i].ID})
			}
			fresh = fresh[:start]
			r.res, r.err = tokenledger.AddResult{}, fmt.Errorf("add to file store: %w", err)
			continue
		}
		for date, c := range trial {
			planned[date] = c
		}
	}
	s.fresh = fresh[:0]
	if len(fresh) == 0 {
		return
	}
	if s.kind == kindOriginal && !s.compacting && s.retryAt == 0 {
		// Once: after a failed conversion, compaction retries it when the
		// journal has grown by the threshold (maybeCompactLocked), not
		// every write — each try rereads the whole original file.
		s.convertLocked()
	}
	for start := 0; start < len(fresh); start += maxLineEvents {
		part := fresh[start:min(start+maxLineEvents, len(fresh))]
		s.batchBuf = appendBatch(s.batchBuf[:0], part)
		line, err := journal.AppendRecord(s.lineBuf[:0], s.batchBuf)
		s.lineBuf = line[:0]
		if err != nil {
			err = fmt.Errorf("write journal: %w", err)
		} else {
			err = s.appendLocked(line)
		}
		if err != nil {
			// Lines already written are durable and counted; the request
			// fails and a retry finishes it without double counting.
			s.mem.AddChecked(fresh[:start])
			for _, r := range group {
				r.res, r.err = tokenledger.AddResult{}, err
			}
			return
		}
	}
	s.mem.AddChecked(fresh) // checked with CheckRoom above, under s.wmu
	s.maybeCompactLocked()
}

// appendLocked writes one journal line and makes it durable, creating the
// active journal on its first line. A failed write is cut off again so
// that the journal stays clean; a failed fsync breaks the store, since the
// state of the written data is then unknown.
func (s *Store) appendLocked(line []byte) error {
	if s.jf == nil {
		if s.seq > maxJournalSeq {
			return unavailable("the journal numbers of %s are used up (the next would be above 2^63); stop tokenledger, move the file's journals aside and set its \"foldedJournal\" to 0", s.path)
		}
		name := journalName(s.path, s.seq)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return writeFailed(err, "create journal: %w", err)
		}
		if err := journal.SyncDir(name); err != nil {
			f.Close()
			os.Remove(name)
			return writeFailed(err, "create journal %s: %w", name, err)
		}
		s.jf, s.joff = f, 0
	}
	n, err := s.jf.Write(line)
	if err != nil {
		if n == 0 { // nothing reached the file (a read-only disk cannot be cut)
			return writeFailed(err, "write journal %s: %w", s.jf.Name(), err)
		}
		if terr := s.jf.Truncate(s.joff); terr != nil {
			s.broken = unavailable("write journal %s: %w; the store must be reopened", s.jf.Name(), err)
			return s.broken
		}
		if _, serr := s.jf.Seek(s.joff, io.SeekStart); serr != nil {
			s.broken = unavailable("write journal %s: %w; the store must be reopened", s.jf.Name(), serr)
			return s.broken
		}
		return writeFailed(err, "write journal %s: %w", s.jf.Name(), err)
	}
	s.syncs.Add(1)
	if err := s.jf.Sync(); err != nil {
		s.broken = unavailable("sync journal %s: %w; the store must be reopened", s.jf.Name(), err)
		return s.broken
	}
	s.joff += int64(n)
	s.unfolded += int64(n)
	return nil
}

// rotateLocked closes the active journal so that a new one starts with the
// next line, and returns the sequence number of the last journal that
// exists: everything up to it may now be folded.
func (s *Store) rotateLocked() uint64 {
	if s.jf == nil {
		return s.seq - 1 // journal s.seq has no file yet
	}
	s.jf.Close()
	s.jf, s.joff = nil, 0
	s.seq++
	return s.seq - 1
}

// threshold returns the journal size that triggers a compaction.
func (s *Store) threshold() int64 {
	if s.compactBytes > 0 {
		return s.compactBytes
	}
	return max(s.snapBytes, DefaultCompactMinBytes)
}

// foldParams returns what a fold of journals up to upTo needs.
func (s *Store) foldParams(upTo uint64) foldParams {
	now := s.now()
	return foldParams{
		path: s.path, base: s.base,
		kind: s.kind, folded: s.folded, upTo: upTo,
		now: now, oldest: tokenledger.DateOf(now).AddDays(-s.retention), retention: s.retention,
		chunkEvents: s.chunkEvents,
	}
}

// applyFoldLocked records that the file now holds every journal up to
// upTo.
func (s *Store) applyFoldLocked(upTo uint64, out foldResult) {
	s.kind, s.folded, s.snapBytes, s.snapOldest = kindOurs, upTo, out.size, out.oldest
	s.unfolded = s.joff // only the active journal is left unfolded
	s.retryAt = 0
}

// maybeCompactLocked starts a background compaction when the journal has
// grown past the threshold (or the file holds expired days at open).
func (s *Store) maybeCompactLocked() {
	if s.compacting || s.broken != nil || s.closed.Load() {
		return
	}
	if s.unfolded < s.threshold() || s.unfolded < s.retryAt {
		return
	}
	upTo := s.rotateLocked()
	p := s.foldParams(upTo)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.compacting, s.compactCancel, s.compactDone = true, cancel, done
	go func() {
		defer close(done)
		defer cancel()
		out, err := foldJournals(ctx, p)
		s.wmu.Lock()
		s.compacting = false
		if err != nil {
			s.retryAt = s.unfolded + s.threshold()
			s.wmu.Unlock()
			if !errors.Is(err, context.Canceled) {
				s.log.Error("token usage file compaction failed; the journal keeps every event and compaction will be retried", "file", s.path, "err", err)
			}
			return
		}
		s.applyFoldLocked(upTo, out)
		s.wmu.Unlock()
		s.afterFold(upTo, out)
	}()
}

// convertLocked converts a file in the original format to ours before the
// first journal line is written, keeping the original as a backup. On
// failure the journal is written all the same and conversion is retried at
// the next compaction.
func (s *Store) convertLocked() {
	upTo := s.rotateLocked()
	out, err := foldJournals(context.Background(), s.foldParams(upTo))
	if err != nil {
		s.retryAt = s.unfolded + s.threshold()
		s.log.Error("could not convert the token usage file to the tokenledger format; it stays as it is and conversion will be retried", "file", s.path, "err", err)
		return
	}
	s.applyFoldLocked(upTo, out)
	s.afterFold(upTo, out)
}

// afterFold removes the journals folded into the file and drops expired
// days from memory.
func (s *Store) afterFold(upTo uint64, out foldResult) {
	if out.backup != "" {
		s.log.Info("converted the token usage file to the tokenledger format; the original is kept byte for byte",
			"file", s.path, "original", out.backup)
	}
	removeJournalsUpTo(s.path, upTo)
	s.mem.Prune()
}

// removeJournalsUpTo removes the journals with sequence numbers up to
// upTo, which the file already holds. A journal left behind by a failure
// here is harmless: the file's "foldedJournal" says to skip it.
func removeJournalsUpTo(path string, upTo uint64) {
	list, err := listJournals(path)
	if err != nil {
		return
	}
	for _, j := range list {
		if j.seq <= upTo {
			_ = os.Remove(j.path)
		}
	}
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
	return s.mem.Days(ctx, q)
}

// Reset deletes all usage data durably: it writes an empty file that
// marks every journal so far as folded (one atomic rename), then removes
// the journals. A crash before the rename leaves the data as it was; after
// it, the data is gone. A file in the original format is kept as a backup.
// It returns the context's error when ctx has ended (nothing deleted),
// ErrUnavailable (wrapped) when the file cannot be written, and ErrClosed
// after Close.
func (s *Store) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	for {
		s.wmu.Lock()
		if !s.compacting {
			break
		}
		cancel, done := s.compactCancel, s.compactDone
		s.wmu.Unlock()
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	if s.broken != nil {
		return s.broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	upTo := s.rotateLocked()
	p := s.foldParams(upTo)
	out, err := writeSnapshot(context.Background(), p, func(*snapWriter) (tokenledger.Date, error) { return "", nil })
	if err != nil {
		return unavailable("reset token usage file %s: %w", s.path, err)
	}
	s.applyFoldLocked(upTo, out)
	if out.backup != "" {
		s.log.Info("reset replaced a token usage file in the original format; the original is kept byte for byte", "file", s.path, "original", out.backup)
	}
	removeJournalsUpTo(s.path, upTo)
	return s.mem.Reset(context.Background())
}

// Check writes a small probe file next to the usage file, makes it
// durable, reads it back and removes it; usage data is not touched. It
// returns ErrUnavailable (wrapped) saying what failed, the journal's error
// when a write could not be made durable, and ErrClosed after Close.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	s.wmu.Lock()
	broken := s.broken
	s.wmu.Unlock()
	if broken != nil {
		return fmt.Errorf("file store %s: %w", s.path, broken)
	}
	f, err := os.CreateTemp(s.dir, "."+s.base+".check-*")
	if err != nil {
		return unavailable("file store check in %s: create probe: %w", s.dir, err)
	}
	name := f.Name()
	defer os.Remove(name)
	want := []byte("tokenledger storage check " + time.Now().UTC().Format(time.RFC3339Nano) + "\n")
	_, err = f.Write(want)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return unavailable("file store check in %s: write probe: %w", s.dir, err)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		return unavailable("file store check in %s: read probe: %w", s.dir, err)
	}
	if string(got) != string(want) {
		return unavailable("file store check in %s: the probe read back differs from what was written", s.dir)
	}
	if err := os.Remove(name); err != nil {
		return unavailable("file store check in %s: remove probe: %w", s.dir, err)
	}
	return nil
}

// Close stops accepting writes, waits for the writes in flight, folds the
// journal into the file (dropping expired days), and releases the lock.
// Every acknowledged event is already durable in the journal, so an error
// from the final compaction loses nothing; it is returned all the same.
// Closing twice is fine; after Close every method returns ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	s.closed.Store(true)
	close(s.quit)
	<-s.runDone
	s.wmu.Lock()
	done := s.compactDone
	s.wmu.Unlock()
	if done != nil {
		<-done
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var errs []error
	if s.broken == nil && (s.unfolded > 0 || s.kind == kindOurs && s.snapOldest != "" && s.snapOldest < s.oldest()) {
		upTo := s.rotateLocked()
		out, err := foldJournals(context.Background(), s.foldParams(upTo))
		switch {
		case err != nil && journal.DiskProblem(err) != "":
			// Nothing is missing: the journal holds every event and the
			// next open folds it. A full or read-only disk is not a
			// failure of the close.
			s.log.Warn("the token usage file was not compacted on close because its disk is "+journal.DiskProblem(err)+"; the journal keeps every event and the next start folds it", "file", s.path, "err", err)
		case err != nil:
			errs = append(errs, fmt.Errorf("close token usage file %s: compact (the journal still holds every event): %w", s.path, err))
		default:
			s.applyFoldLocked(upTo, out)
			s.afterFold(upTo, out)
		}
	}
	if s.jf != nil {
		if err := s.jf.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close journal: %w", err))
		}
		s.jf = nil
	}
	_ = s.mem.Close()
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("unlock token usage file: %w", err))
	}
	return errors.Join(errs...)
}

// Info describes the store: a local file.
func (s *Store) Info() tokenledger.StoreInfo {
	return tokenledger.StoreInfo{Kind: "file", Database: false, Location: s.path}
}
