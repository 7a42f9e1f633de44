package filestore

import (
	"errors"
	"fmt"
	"os"

	"github.com/tokenledger/tokenledger"
)

// MissingError says that a version 2 snapshot names a journal segment or
// an id index that is not on disk (deleted by hand, or lost). It matches
// ErrCorrupt: Open and Scan refuse the store, and Repair moves the
// snapshot aside so that the next start rebuilds it from the journals.
type MissingError struct {
	// Path is the usage file (the snapshot) that names the missing file.
	Path string
	// Missing is the journal or id index that is not there.
	Missing string
	// Role says what the missing file holds, e.g. "the id index of
	// journals 1 to 12".
	Role string
}

// Error returns one sentence naming the missing file and the way out.
func (e *MissingError) Error() string {
	return fmt.Sprintf("token usage file %s names %s (%s), which is missing; nothing was changed: put it back, or run tokenledger serve --repair, which moves %s aside so that the next start rebuilds it from the journals that remain, without the missing file's events",
		e.Path, e.Missing, e.Role, e.Path)
}

// Is makes errors.Is(err, ErrCorrupt) true for a *MissingError.
func (e *MissingError) Is(target error) bool { return target == ErrCorrupt }

// checkPresent returns a *MissingError for the first journal or id index
// that a checkpoint still in the window (LastDay ≥ oldest) names and that
// is not on disk; journals is a listing of the journals, oldest first. A
// journal absent from the listing is looked up once more, since a lockless
// reader may race with a checkpoint that just made it.
func checkPresent(path string, cps []checkpoint, oldest tokenledger.Date, journals []journalFile) error {
	k := 0
	for _, c := range cps {
		for k < len(journals) && journals[k].seq < c.From {
			k++
		}
		if c.LastDay < oldest {
			continue // expired: the next checkpoint removes it
		}
		for want := c.From; want <= c.To; want++ {
			if k < len(journals) && journals[k].seq == want {
				k++
			} else if name := journalName(path, want); !exists(name) {
				return &MissingError{Path: path, Missing: name, Role: fmt.Sprintf("a journal segment of checkpoint %d to %d", c.From, c.To)}
			}
		}
		if idx := indexName(path, c.To); !exists(idx) {
			return &MissingError{Path: path, Missing: idx, Role: fmt.Sprintf("the id index of journals %d to %d", c.From, c.To)}
		}
	}
	return nil
}

// exists reports whether a file is at name; an error other than "does
// not exist" counts as there (reading it then reports that error).
func exists(name string) bool {
	_, err := os.Lstat(name)
	return !errors.Is(err, os.ErrNotExist)
}
