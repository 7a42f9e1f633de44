package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// load2 opens a version 2 usage file: the aggregates from the snapshot,
// the ids from the checkpoints' indexes, and only the journals after the
// snapshot replayed event by event. It runs before the Store is shared.
func (s *Store) load2() error {
	oldest := s.oldest()
	snap, err := readSnapshot2(s.path, oldest)
	if err != nil {
		return err
	}
	list, err := listJournals(s.path)
	if err != nil {
		return err
	}
	if err := checkPresent(s.path, snap.Checkpoints, oldest, list); err != nil {
		return err
	}
	for _, st := range snap.days {
		s.agg.Restore(st)
	}
	for _, cp := range snap.Checkpoints {
		if cp.LastDay < oldest {
			continue // expired: the next checkpoint removes it
		}
		if err := readIndex(indexName(s.path, cp.To), oldest, s.agg.AddSealed); err != nil {
			return err
		}
	}
	var res ScanResult
	var live []journalFile
	for _, j := range list {
		switch {
		case j.seq > snap.Covered:
			live = append(live, j)
		case !covers(snap.Checkpoints, j.seq):
			if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) && journal.DiskProblem(err) != "read-only" {
				return fmt.Errorf("remove dropped journal: %w", err)
			}
		}
	}
	var validEnd int64
	for i, j := range live {
		jr, err := s.replay(j, i == len(live)-1, oldest, &res)
		if err != nil {
			return err
		}
		s.unfolded += jr.validEnd
		validEnd = jr.validEnd
		if jr.torn != nil {
			res.TornTail = jr.torn
		}
	}
	s.removeTemporaries()
	s.removeOrphanIndexes(snap.Checkpoints)
	removeStaleDayFiles(s.path, snap.files)
	s.kind, s.covered, s.checkpoints, s.snapBytes = kindV2, snap.Covered, snap.Checkpoints, snap.size
	s.dayFiles, s.gen = snap.files, snap.Generation
	s.snapOldest = snap.firstDay
	for _, c := range snap.Checkpoints {
		if c.LastDay != "" && (s.snapOldest == "" || c.LastDay < s.snapOldest) {
			s.snapOldest = c.LastDay // an expired checkpoint is due for removal too
		}
	}
	s.seq, s.uncovered = snap.Covered+1, snap.Covered+1
	if n := len(live); n > 0 {
		if err := s.reopenJournal(live[n-1], validEnd, res.TornTail); err != nil {
			return err
		}
	}
	res.Format = FormatTokenledger
	s.loaded(&res, len(live))
	return nil
}

// replay counts the events of journal j, newer than the snapshot.
func (s *Store) replay(j journalFile, last bool, oldest tokenledger.Date, res *ScanResult) (journalRead, error) {
	f, err := os.Open(j.path)
	if err != nil {
		return journalRead{}, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	return readJournal(j.path, f, last, func(evs []tokenledger.Event) error {
		if err := s.agg.CheckRoom(evs); err != nil {
			return fmt.Errorf("load token usage file %s: %w", s.path, err)
		}
		for i := range evs {
			res.Records++
			switch {
			case evs[i].Day() < oldest:
				res.Expired++
			case s.agg.Apply(&evs[i]):
				res.Valid++
			default:
				res.Duplicates++
			}
		}
		return nil
	})
}

// removeOrphanIndexes removes the id indexes no checkpoint names: those a
// checkpoint wrote before a crash kept it from writing its snapshot.
func (s *Store) removeOrphanIndexes(cps []checkpoint) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	named := map[uint64]bool{}
	for _, c := range cps {
		named[c.To] = true
	}
	prefix := s.base + ".index-"
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		seq, err := strconv.ParseUint(n[len(prefix):], 10, 64)
		if err == nil && !named[seq] {
			_ = os.Remove(filepath.Join(s.dir, n))
		}
	}
}
