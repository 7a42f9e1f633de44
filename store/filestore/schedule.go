package filestore

import (
	"context"
	"errors"
	"os"

	"github.com/tokenledger/tokenledger"
)

// rotateLocked closes the active journal so that a new one starts with the
// next line, and returns the sequence number of the last journal that
// exists: everything up to it may now be folded. wmu is held exclusively.
func (s *Store) rotateLocked() uint64 {
	if s.w == nil {
		return s.seq - 1 // journal s.seq has no file yet
	}
	s.syncs.Add(s.w.Syncs())
	_ = s.w.Close() // nothing is in flight; a sticky error is s.broken
	s.w = nil
	s.seq++
	return s.seq - 1
}

// threshold returns the journal size that triggers a compaction; smu is
// held.
func (s *Store) threshold() int64 {
	if s.compactBytes > 0 {
		return s.compactBytes
	}
	return max(s.snapBytes, DefaultCompactMinBytes)
}

// compactionDue reports whether the journal has grown past the threshold
// with no compaction running.
func (s *Store) compactionDue() bool {
	s.smu.Lock()
	defer s.smu.Unlock()
	return !s.compacting && s.broken == nil && s.unfolded >= s.threshold() && s.unfolded >= s.retryAt
}

// foldParams returns what a fold of journals up to upTo needs; smu is
// held.
func (s *Store) foldParams(upTo uint64) foldParams {
	now := s.now()
	return foldParams{
		path: s.path, base: s.base,
		kind: s.kind, folded: s.folded, upTo: upTo,
		now: now, oldest: tokenledger.DateOf(now).AddDays(-s.retention), retention: s.retention,
		chunkEvents: s.chunkEvents,
	}
}

// applyFold records that the file now holds every journal up to upTo;
// left is the size of the journals after it, not folded yet.
func (s *Store) applyFold(upTo uint64, out foldResult, left int64) {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.kind, s.folded, s.snapBytes, s.snapOldest = kindOurs, upTo, out.size, out.oldest
	s.unfolded = left
	s.retryAt = 0
}

// maybeCompact starts a background compaction when the journal has grown
// past the threshold (or the file holds expired days at open). The
// compaction needs neither wmu nor the journal: writers go on.
func (s *Store) maybeCompact() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.compacting || s.broken != nil || s.closed.Load() {
		return
	}
	if s.unfolded < s.threshold() || s.unfolded < s.retryAt {
		return
	}
	if s.kind == kindV2 {
		s.smu.Unlock()
		err := s.checkpointLocked(s.uncovered, nil)
		s.smu.Lock()
		if err != nil {
			s.retryAt = s.unfolded + s.threshold()
			s.log.Error("token usage checkpoint failed; the journal keeps every event and the checkpoint will be retried", "file", s.path, "err", err)
		}
		return
	}
	upTo := s.rotateLocked()
	folding := s.unfolded // every journal up to upTo, and nothing after it yet
	p := s.foldParams(upTo)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.compacting, s.compactCancel, s.compactDone = true, cancel, done
	go func() {
		defer close(done)
		defer cancel()
		out, err := foldJournals(ctx, p)
		if err != nil {
			s.smu.Lock()
			s.compacting = false
			s.retryAt = s.unfolded + s.threshold()
			s.smu.Unlock()
			if !errors.Is(err, context.Canceled) {
				s.log.Error("token usage file compaction failed; the journal keeps every event and compaction will be retried", "file", s.path, "err", err)
			}
			return
		}
		s.smu.Lock()
		left := s.unfolded - folding
		s.smu.Unlock()
		s.applyFold(upTo, out, left)
		s.afterFold(upTo, out)
		s.smu.Lock()
		s.compacting = false
		s.smu.Unlock()
	}()
}

// convertBeforeFirstWrite converts a file in the original format to ours
// before the first journal line that holds a new event is written,
// keeping the original as a backup. On failure the journal is written all
// the same and conversion is retried at the next compaction (a try
// rereads the whole original file, so it is not repeated on every write).
func (s *Store) convertBeforeFirstWrite(evs []tokenledger.Event) {
	s.smu.Lock()
	original := s.kind == kindOriginal
	s.smu.Unlock()
	if !original {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.kind != kindOriginal || s.compacting || s.retryAt != 0 || s.closed.Load() || !s.anyNew(evs) {
		return
	}
	upTo := s.rotateLocked()
	out, err := foldJournals(context.Background(), s.foldParams(upTo))
	if err != nil {
		s.retryAt = s.unfolded + s.threshold()
		s.log.Error("could not convert the token usage file to the tokenledger format; it stays as it is and conversion will be retried", "file", s.path, "err", err)
		return
	}
	s.kind, s.folded, s.snapBytes, s.snapOldest = kindOurs, upTo, out.size, out.oldest
	s.unfolded, s.retryAt = 0, 0
	s.afterFold(upTo, out)
	if s.version2 {
		s.smu.Unlock()
		err := s.migrateToVersion2()
		s.smu.Lock()
		if err != nil {
			s.log.Error("could not migrate the converted token usage file to version 2; it stays in version 1 until the next start", "file", s.path, "err", err)
		}
	}
}

// anyNew reports whether evs holds an event not counted yet; wmu is held
// exclusively, so none is in flight.
func (s *Store) anyNew(evs []tokenledger.Event) bool {
	s.amu.RLock()
	defer s.amu.RUnlock()
	for i := range evs {
		if !s.agg.Has(evs[i].Day(), evs[i].ID) {
			return true
		}
	}
	return false
}

// afterFold removes the journals folded into the file and drops expired
// days from memory.
func (s *Store) afterFold(upTo uint64, out foldResult) {
	if out.backup != "" {
		s.log.Info("converted the token usage file to the tokenledger format; the original is kept byte for byte",
			"file", s.path, "original", out.backup)
	}
	removeJournalsUpTo(s.path, upTo)
	s.amu.Lock()
	s.agg.Prune(s.oldest())
	s.amu.Unlock()
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
