package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// load reads the file and its journals into s.agg, then tidies what a
// crash can leave behind: journals already folded into the file, an
// incomplete last journal line, temporary files. It runs before the Store
// is shared, so it takes no lock.
func (s *Store) load() error {
	if isVersion2(s.path) {
		return s.load2()
	}
	var res ScanResult
	sc, err := scanFiles(s.path, s.now(), s.oldest(), 4096, &res, func(evs []tokenledger.Event) error {
		if err := s.agg.CheckRoom(evs); err != nil {
			return fmt.Errorf("load token usage file %s: %w", s.path, err)
		}
		for i := range evs {
			if s.agg.Apply(&evs[i]) {
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
	s.removeOrphanIndexes(nil)
	removeStaleDayFiles(s.path, nil)

	s.kind, s.folded, s.snapBytes, s.snapOldest = sc.kind, sc.folded, sc.snapSize, sc.firstDay
	s.unfolded = sc.unfoldedBytes
	s.seq = sc.folded + 1
	if n := len(sc.journals); n > 0 {
		if err := s.reopenJournal(sc.journals[n-1], sc.lastValidEnd, res.TornTail); err != nil {
			return err
		}
	}
	if s.version2 && s.kind == kindOurs {
		if err := s.migrateToVersion2(); err != nil {
			return err
		}
	} else if s.version2 && s.kind == kindNone {
		s.kind = kindV2 // the first checkpoint writes the file
		s.uncovered = 1
		if len(sc.journals) > 0 {
			s.uncovered = sc.journals[0].seq // 0 when it is a migrated segment
		}
	}
	s.loaded(&res, len(sc.journals))
	return nil
}

// reopenJournal makes the newest journal the active one, cutting off the
// incomplete last line a crash left (it was never acknowledged, so the
// next line must start on a clean line). On a read-only disk without such
// a line it serves what is there: writes are refused until the disk can
// be written again, and the first one then starts the next journal.
func (s *Store) reopenJournal(last journalFile, validEnd int64, torn *TornTail) error {
	w, err := journal.OpenWriter(last.path, validEnd)
	if err != nil && torn == nil && journal.DiskProblem(err) == "read-only" {
		s.seq = last.seq + 1
		s.log.Warn("the disk that holds the token usage file is read-only: reports are served, writes are refused until it can be written", "file", s.path)
		return nil
	}
	if err != nil && torn != nil {
		return fmt.Errorf("truncate the incomplete last line of journal %s: %w", last.path, err)
	}
	if err != nil {
		return err
	}
	if torn != nil {
		s.log.Warn("dropped the incomplete last line of the token usage journal: a crash cut its write short, so it was never acknowledged",
			"journal", last.path, "offset", torn.Offset, "bytes", torn.Bytes)
	}
	s.w, s.seq = w, last.seq
	return nil
}

// loaded logs what load found and starts a compaction when one is due.
func (s *Store) loaded(res *ScanResult, journals int) {
	for _, r := range res.InvalidRecords {
		s.log.Warn("skipped an invalid record of the token usage file", "file", s.path, "index", r.Index, "id", r.ID, "reason", r.Reason)
	}
	s.log.Info("token usage file loaded", "file", s.path, "format", res.Format,
		"events", res.Valid, "expired", res.Expired, "invalid", res.Invalid, "duplicates", res.Duplicates,
		"journals", journals)
	s.maybeCompact()
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
		index := strings.HasPrefix(n, s.base+".index-") && strings.Contains(n, ".tmp-")
		if index || strings.HasPrefix(n, s.base+".tmp-") || strings.HasPrefix(n, "."+s.base+".check-") {
			_ = os.Remove(filepath.Join(s.dir, n))
		}
	}
}
