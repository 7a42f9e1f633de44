package filestore

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tokenledger/tokenledger"
)

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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.stopCompaction(ctx); err != nil {
		return err
	}
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.kind == kindV2 {
		return s.reset2Locked()
	}
	upTo := s.rotateLocked()
	out, err := writeSnapshot(context.Background(), s.foldParams(upTo), func(*snapWriter) (tokenledger.Date, error) { return "", nil })
	if err != nil {
		return unavailable("reset token usage file %s: %w", s.path, err)
	}
	s.kind, s.folded, s.snapBytes, s.snapOldest = kindOurs, upTo, out.size, out.oldest
	s.unfolded, s.retryAt = 0, 0
	if out.backup != "" {
		s.log.Info("reset replaced a token usage file in the original format; the original is kept byte for byte", "file", s.path, "original", out.backup)
	}
	removeJournalsUpTo(s.path, upTo)
	s.amu.Lock()
	s.agg.Reset()
	s.amu.Unlock()
	return nil
}

// stopCompaction cancels a running compaction and waits for it to end, or
// returns ctx's error; wmu is held exclusively, so no new one starts.
func (s *Store) stopCompaction(ctx context.Context) error {
	s.smu.Lock()
	compacting, cancel, done := s.compacting, s.compactCancel, s.compactDone
	s.smu.Unlock()
	if !compacting {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
	s.smu.Lock()
	broken := s.broken
	s.smu.Unlock()
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

// reset2Locked is Reset for a version 3 file: a manifest with no days and
// no checkpoints that covers every journal so far, then the journals,
// indexes and day files removed. wmu is held exclusively and smu is held.
func (s *Store) reset2Locked() error {
	upTo := s.rotateLocked()
	h := header2{UpdatedAt: s.now().UTC(), RetentionDays: s.retention, Covered: max(upTo, s.covered), Generation: s.gen + 1}
	size, err := writeSnapshot2(s.path, h, nil, nil)
	if err != nil {
		return unavailable("reset token usage file %s: %w", s.path, err)
	}
	drop := append(s.checkpoints, checkpoint{From: 0, To: h.Covered})
	s.covered, s.checkpoints, s.snapBytes, s.snapOldest = h.Covered, nil, size, ""
	s.uncovered = h.Covered + 1
	s.unfolded, s.retryAt, s.pendingIDs = 0, 0, nil
	s.dayFiles, s.gen = nil, h.Generation
	s.removeCheckpoints(drop)
	removeStaleDayFiles(s.path, nil)
	s.amu.Lock()
	s.agg.Reset()
	s.amu.Unlock()
	return nil
}
