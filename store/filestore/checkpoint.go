package filestore

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// checkpointLocked makes a version 3 usage file hold everything written so
// far: it closes the active journal, packs the ids counted since the last
// checkpoint into a new id index covering journals from from on (s.covered+1
// but for a migration), writes the day files of the days that changed,
// writes the manifest naming them and the index, and then removes the
// checkpoints whose days have all left the retention window and the day
// files no longer named. What it writes is in proportion to what changed
// since the last checkpoint (its ids, and the aggregates of the days they
// fell on), not to the history. before, when set, runs just before the
// manifest's rename. wmu is held exclusively.
func (s *Store) checkpointLocked(from uint64, before func() error) error {
	upTo := s.rotateLocked()
	oldest := s.oldest()
	s.amu.Lock()
	s.agg.Prune(oldest)
	if sealed := s.agg.Seal(); len(sealed) > 0 {
		s.pendingIDs = append(s.pendingIDs, sealed)
	}
	states := s.agg.ExportChanged(func(d tokenledger.Date) bool { _, ok := s.dayFiles[d]; return !ok })
	s.amu.Unlock()
	// Each try takes a new generation, even one that fails (its manifest
	// may be in place all the same): a day file is never rewritten.
	s.gen++
	gen := s.gen
	files, err := s.writeDayFiles(states, oldest, gen)
	if err != nil {
		return err
	}

	s.smu.Lock()
	covered, cps := s.covered, s.checkpoints
	s.smu.Unlock()
	var keep, drop []checkpoint
	for _, c := range cps {
		if c.LastDay < oldest {
			drop = append(drop, c)
		} else {
			keep = append(keep, c)
		}
	}
	if upTo >= from {
		cp := checkpoint{From: from, To: upTo}
		last, err := writeIndex(indexName(s.path, upTo), mergeIDs(s.pendingIDs))
		if err != nil {
			return err
		}
		cp.LastDay = last
		if last < oldest {
			drop = append(drop, cp) // only expired events: nothing to keep
		} else {
			keep = append(keep, cp)
		}
	}
	h := header2{UpdatedAt: s.now().UTC(), RetentionDays: s.retention, Covered: max(upTo, covered), Checkpoints: keep, Generation: gen}
	size, err := writeSnapshot2(s.path, h, dayRefs(files), before)
	if err != nil {
		return err
	}
	s.pendingIDs = nil
	s.amu.Lock()
	s.agg.ClearChanged()
	s.amu.Unlock()
	s.smu.Lock()
	s.kind, s.covered, s.checkpoints = kindV2, h.Covered, keep
	s.dayFiles, s.snapBytes = files, size
	s.uncovered = h.Covered + 1
	s.snapOldest = ""
	for d, f := range files {
		s.snapBytes += f.size
		if s.snapOldest == "" || d < s.snapOldest {
			s.snapOldest = d
		}
	}
	for _, c := range keep {
		if s.snapOldest == "" || c.LastDay < s.snapOldest {
			s.snapOldest = c.LastDay // when it expires, a checkpoint is due
		}
	}
	s.unfolded, s.retryAt = 0, 0
	s.smu.Unlock()
	s.removeCheckpoints(drop)
	removeStaleDayFiles(s.path, files)
	return nil
}

// writeDayFiles writes the day files of generation gen for states and
// returns the day files the next manifest names: those, and the ones of
// the other days still in the window. wmu is held exclusively.
func (s *Store) writeDayFiles(states []dayagg.State, oldest tokenledger.Date, gen uint64) (map[tokenledger.Date]dayFile, error) {
	files := make(map[tokenledger.Date]dayFile, len(s.dayFiles)+len(states))
	for d, f := range s.dayFiles {
		if d >= oldest {
			files[d] = f
		}
	}
	for _, st := range states {
		size, err := writeDayFile(s.path, st, gen)
		if err != nil {
			return nil, err
		}
		files[st.Day.Date] = dayFile{gen: gen, size: size}
	}
	return files, nil
}

// mergeIDs joins the id sets sealed by one or more checkpoints that could
// not write their index, day by day.
func mergeIDs(parts []map[tokenledger.Date]dayagg.IDs) map[tokenledger.Date]dayagg.IDs {
	if len(parts) == 1 {
		return parts[0]
	}
	all := map[tokenledger.Date][]string{}
	for _, p := range parts {
		for d, ids := range p {
			ids.Each(func(id string) { all[d] = append(all[d], id) })
		}
	}
	out := make(map[tokenledger.Date]dayagg.IDs, len(all))
	for d, ids := range all {
		out[d] = dayagg.BuildIDs(ids)
	}
	return out
}

// removeCheckpoints removes the index and the journals of checkpoints the
// snapshot no longer names. A file left behind by a failure here is
// removed at the next start (load2 drops journals no checkpoint covers).
func (s *Store) removeCheckpoints(drop []checkpoint) {
	if len(drop) == 0 {
		return
	}
	list, err := listJournals(s.path)
	if err == nil {
		for _, j := range list {
			if covers(drop, j.seq) {
				_ = os.Remove(j.path)
			}
		}
	}
	for _, c := range drop {
		_ = os.Remove(indexName(s.path, c.To))
	}
}

// migrateToVersion2 turns a version 1 usage file, loaded, into version 2:
// its events are written as journal number "foldedJournal" (a segment like
// any other; the version 1 file holds that journal already, so until the
// rename below it is a folded journal, removed at a start), a checkpoint
// indexes it with the unfolded journals, and the snapshot replaces the
// file, the version 1 file being kept byte for byte as
// "<file>.v1-<UTC stamp>.json" just before. A crash before the rename
// leaves the version 1 file as it was. wmu is held exclusively.
func (s *Store) migrateToVersion2() error {
	s.smu.Lock()
	seg := s.folded
	s.smu.Unlock()
	if err := writeSegment(s.path, journalName(s.path, seg), s.oldest()); err != nil {
		return fmt.Errorf("migrate token usage file %s to version 2: %w", s.path, err)
	}
	var backup string
	err := s.checkpointLocked(seg, func() error {
		var err error
		backup, err = keepBackup(s.path, ".v1-")
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate token usage file %s to version 2: %w", s.path, err)
	}
	s.log.Info("migrated the token usage file to version 2 (aggregates, id indexes and journal segments); the version 1 file is kept byte for byte", "file", s.path, "v1", backup)
	return nil
}

// writeSegment writes the unexpired events of the version 1 usage file at
// path, each (day, id) once, to a new journal at name, durably.
func writeSegment(path, name string, oldest tokenledger.Date) error {
	snap, err := openSnapshot(path)
	if err != nil {
		return err
	}
	defer snap.close()
	tmp, err := createSnapshot(name, filepath.Base(path)+".tmp-*", 0o644)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	w := newLineWriter(tmp.File())
	err = snap.eachDay(func(d tokenledger.Date, evs []tokenledger.Event) error {
		if d < oldest {
			return nil
		}
		seen := make(map[string]struct{}, len(evs))
		out := evs[:0]
		for i := range evs {
			if _, dup := seen[evs[i].ID]; !dup {
				seen[evs[i].ID] = struct{}{}
				out = append(out, evs[i])
			}
		}
		return w.write(out)
	})
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		return err
	}
	return tmp.Commit()
}

// keepBackup keeps the file at path as "<path><infix><UTC stamp>.json" by
// a hard link (a durable copy where links are not possible).
func keepBackup(path, infix string) (string, error) {
	st := time.Now().UTC().Format("20060102T150405Z")
	for i := 1; i <= 100; i++ {
		name := path + infix + st + ".json"
		if i > 1 {
			name = fmt.Sprintf("%s%s%s-%d.json", path, infix, st, i)
		}
		if _, err := os.Lstat(name); err == nil {
			continue
		}
		if err := os.Link(path, name); err != nil {
			if err := copyDurably(path, name); err != nil {
				return "", fmt.Errorf("keep the version 1 token usage file as %s: %w", name, err)
			}
		}
		return name, nil
	}
	return "", fmt.Errorf("keep the version 1 token usage file: too many backups named %s%s%s*.json", path, infix, st)
}

// closeCheckpointError is Close's error for a failed last checkpoint: a
// full or read-only disk is not a failure of the close (the journal holds
// every event and the next start replays it), anything else is reported.
func (s *Store) closeCheckpointError(err error) error {
	if why := journal.DiskProblem(err); why != "" {
		s.log.Warn("the token usage snapshot was not written on close because its disk is "+why+"; the journal keeps every event and the next start replays it", "file", s.path, "err", err)
		return nil
	}
	return fmt.Errorf("close token usage file %s: checkpoint (the journal still holds every event): %w", s.path, err)
}
