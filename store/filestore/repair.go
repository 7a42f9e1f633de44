package filestore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/journal"
)

// Repair lets a store start again after its usage file or a journal was
// found corrupt. It takes the file's lock (so it fails with ErrLocked while
// a Store has the file open), then:
//
//   - a corrupt usage file is renamed to "<file>.corrupt-<UTC stamp>";
//   - a corrupt journal is renamed to "<journal>.corrupt-<UTC stamp>", and
//     its lines that still pass their checksum are written back, durably,
//     under the journal's name, so acknowledged events that can still be
//     read are kept.
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
		aside, err := moveAside(j.path, st)
		if err != nil {
			return moved, err
		}
		moved = append(moved, aside)
		if err := salvageJournal(aside, j.path, filepath.Base(path)+".tmp-*"); err != nil {
			return moved, fmt.Errorf("repair: keep the readable lines of %s: %w", aside, err)
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

// moveAside renames path to "<path>.corrupt-<stamp>" (adding "-2", "-3"…
// when taken) and returns the new name.
func moveAside(path, st string) (string, error) {
	for i := 1; i <= 100; i++ {
		name := path + ".corrupt-" + st
		if i > 1 {
			name = fmt.Sprintf("%s.corrupt-%s-%d", path, st, i)
		}
		if _, err := os.Lstat(name); err == nil {
			continue
		}
		if err := os.Rename(path, name); err != nil {
			return "", fmt.Errorf("repair: move %s aside: %w", path, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("repair: move %s aside: too many files named %s.corrupt-%s*", path, path, st)
}

// salvageJournal writes the lines of the journal at from that pass their
// checksum and hold valid events to a new journal at to, durably. It
// writes nothing when no line is readable. The temp file is named after
// tmpPattern, so that Open removes it if a crash leaves it behind.
func salvageJournal(from, to, tmpPattern string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, 256<<10)
	var tmp *journal.AtomicFile
	var bw *bufio.Writer
	for {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return rerr
		}
		if payload, err := journal.DecodeRecord(line); err == nil {
			if _, reason := decodeJournalEvents(payload); reason == "" {
				if tmp == nil {
					if tmp, err = journal.CreateAtomic(to, tmpPattern, 0o600); err != nil {
						return err
					}
					defer tmp.Discard()
					bw = bufio.NewWriter(tmp.File())
				}
				if _, err := bw.Write(line); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if tmp == nil {
		return nil
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return tmp.Commit()
}
