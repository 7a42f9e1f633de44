package filestore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// Repair lets a store start again after its usage file or a journal was
// found corrupt. It takes the file's lock (so it fails with ErrLocked while
// a Store has the file open), then:
//
//   - a corrupt usage file is renamed to "<file>.corrupt-<UTC stamp>";
//   - a corrupt journal is kept as "<journal>.corrupt-<UTC stamp>", and
//     its lines that still pass their checksum replace it, durably, under
//     the journal's name, so acknowledged events that can still be read
//     are kept. The lines are written to a temp file first and put in
//     place by one rename, so a failure or crash part way leaves the
//     damaged journal where it was.
//
// It returns the new names of the files it moved aside. Nothing is ever
// deleted. A healthy file and journals are left alone and Repair returns
// ErrNothingToRepair; a file of an unknown (newer) version is not corrupt,
// and Repair returns ErrUnknownVersion without touching it.
func Repair(path string) (moved []string, err error) {
	if path == "" {
		return nil, errors.New("repair token usage file: the path is empty")
	}
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, &sentinelError{ErrNothingToRepair, fmt.Sprintf("nothing to repair: %s does not exist", dir)}
	}
	lk, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	defer lk.Close()

	snapCorrupt, folded, err := checkSnapshot(path)
	if err != nil {
		return nil, err
	}
	list, err := listJournals(path)
	if err != nil {
		return nil, err
	}
	var live []journalFile
	for _, j := range list {
		if snapCorrupt || j.seq > folded {
			live = append(live, j)
		}
	}
	var badJournals []journalFile
	for i, j := range live {
		f, err := os.Open(j.path)
		if err != nil {
			return nil, fmt.Errorf("repair: open journal: %w", err)
		}
		_, err = readJournal(j.path, f, i == len(live)-1, func([]tokenledger.Event) error { return nil })
		f.Close()
		if errors.Is(err, ErrCorrupt) {
			badJournals = append(badJournals, j)
		} else if err != nil {
			return nil, fmt.Errorf("repair: %w", err)
		}
	}
	if !snapCorrupt && len(badJournals) == 0 {
		return nil, &sentinelError{ErrNothingToRepair, fmt.Sprintf(
			"nothing to repair: token usage file %s and its journals are healthy, so nothing was moved", path)}
	}

	st := stamp()
	if snapCorrupt {
		aside, err := moveAside(path, st)
		if err != nil {
			return moved, err
		}
		moved = append(moved, aside)
	}
	for _, j := range badJournals {
		// The readable lines are written (and fsync'd) to a temp file
		// first, the damaged journal is then kept under a new name by a
		// hard link, and only then does the temp file replace it, in one
		// rename: at every instant the journal's name holds the damaged
		// journal or its salvaged lines, so a failure or a crash part way
		// loses nothing (the next start refuses the damaged journal
		// again, and Repair can be run again).
		salvaged, err := salvageJournal(j.path, filepath.Base(path)+".tmp-*")
		if err != nil {
			return moved, fmt.Errorf("repair: keep the readable lines of %s: %w", j.path, err)
		}
		var aside string
		if salvaged == nil {
			aside, err = moveAside(j.path, st)
		} else {
			aside, err = keepAside(j.path, st)
		}
		if err != nil {
			if salvaged != nil {
				salvaged.Discard()
			}
			return moved, err
		}
		moved = append(moved, aside)
		if salvaged != nil {
			err := salvaged.Commit()
			salvaged.Discard()
			if err != nil {
				return moved, fmt.Errorf("repair: put the readable lines of %s in place: %w", aside, err)
			}
		}
	}
	if err := journal.SyncDir(path); err != nil {
		return moved, fmt.Errorf("repair: %w", err)
	}
	return moved, nil
}

// checkSnapshot reads the whole usage file and reports whether it is
// corrupt, and otherwise its "foldedJournal". Other errors (unknown
// version, I/O) are returned.
func checkSnapshot(path string) (corrupt bool, folded uint64, err error) {
	if isVersion2(path) {
		return checkSnapshot2(path)
	}
	snap, err := openSnapshot(path)
	if errors.Is(err, ErrCorrupt) {
		return true, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("repair: %w", err)
	}
	defer snap.close()
	switch snap.kind {
	case kindOurs:
		err = snap.eachDay(func(tokenledger.Date, []tokenledger.Event) error { return nil })
	case kindOriginal:
		err = snap.eachRecord(func(int, *tokenledger.Event, string, string) error { return nil })
	}
	if errors.Is(err, ErrCorrupt) {
		return true, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("repair: %w", err)
	}
	return false, snap.folded, nil
}

// checkSnapshot2 is checkSnapshot for a version 2 file: the snapshot and
// its id indexes are checked, and folded is 0 so that every journal (all
// are segments) is checked too. A damaged index makes the snapshot count
// as corrupt: moved aside, the store rebuilds both from the journals.
func checkSnapshot2(path string) (corrupt bool, folded uint64, err error) {
	snap, err := readSnapshot2(path, "")
	if err == nil {
		var list []journalFile
		if list, err = listJournals(path); err == nil {
			// The window Open uses, as the snapshot's retention gives it.
			oldest := tokenledger.DateOf(time.Now()).AddDays(-snap.RetentionDays)
			err = checkPresent(path, snap.Checkpoints, oldest, list)
		}
	}
	if err == nil {
		for _, c := range snap.Checkpoints {
			if err = readIndex(indexName(path, c.To), "", func(tokenledger.Date, dayagg.IDs) {}); err != nil {
				break
			}
		}
	}
	if errors.Is(err, ErrCorrupt) {
		return true, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("repair: %w", err)
	}
	return false, 0, nil
}

// moveAside renames path to "<path>.corrupt-<stamp>" (adding "-2", "-3"…
// when taken) and returns the new name.
func moveAside(path, st string) (string, error) {
	return aside(path, st, "move", os.Rename)
}

// keepAside gives path a second name, "<path>.corrupt-<stamp>" as
// moveAside names it, by a hard link (so path stays in place until it is
// replaced) and makes that durable; it returns the new name.
func keepAside(path, st string) (string, error) {
	name, err := aside(path, st, "keep", os.Link)
	if err != nil {
		return "", err
	}
	if err := journal.SyncDir(path); err != nil {
		return "", fmt.Errorf("repair: %w", err)
	}
	return name, nil
}

// aside finds a free "<path>.corrupt-<stamp>[-N]" name and calls op (a
// rename or a link) from path to it; verb names the step in errors.
func aside(path, st, verb string, op func(from, to string) error) (string, error) {
	for i := 1; i <= 100; i++ {
		name := path + ".corrupt-" + st
		if i > 1 {
			name = fmt.Sprintf("%s.corrupt-%s-%d", path, st, i)
		}
		if _, err := os.Lstat(name); err == nil {
			continue
		}
		if err := op(path, name); err != nil {
			return "", fmt.Errorf("repair: %s %s aside: %w", verb, path, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("repair: %s %s aside: too many files named %s.corrupt-%s*", verb, path, path, st)
}

// salvageJournal writes the lines of the journal at path that pass their
// checksum and hold valid events to a temp file, durably, and returns it,
// not yet in place (Commit puts it over path; defer Discard). It returns
// nil when no line is readable. The temp file is named after tmpPattern,
// so that Open removes it if a crash leaves it behind.
func salvageJournal(path, tmpPattern string) (_ *journal.AtomicFile, err error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, 256<<10)
	var tmp *journal.AtomicFile
	defer func() {
		if err != nil && tmp != nil {
			tmp.Discard()
		}
	}()
	var bw *bufio.Writer
	for {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return nil, rerr
		}
		// A bad line that begins with a whole record is records merged by
		// a damaged newline: each whole one is kept.
		for len(line) > 0 {
			rec, rest := line, []byte(nil)
			payload, err := journal.DecodeRecord(line)
			if err != nil {
				var ok bool
				if rec, rest, ok = journal.SplitMerged(line); !ok {
					break
				}
				payload, _ = journal.DecodeRecord(rec)
			}
			if _, reason := decodeJournalEvents(payload); reason == "" {
				if tmp == nil {
					if tmp, err = journal.CreateAtomic(path, tmpPattern, 0o600); err != nil {
						return nil, err
					}
					bw = bufio.NewWriter(tmp.File())
				}
				if _, err := bw.Write(rec); err != nil {
					return nil, err
				}
			}
			line = rest
		}
		if rerr == io.EOF {
			break
		}
	}
	if tmp == nil {
		return nil, nil
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	return tmp, nil
}
