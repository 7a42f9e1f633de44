package filestore

import (
	"fmt"
	"path/filepath"

	"github.com/gofrs/flock"
)

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
