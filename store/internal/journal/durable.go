package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// MkdirAll creates dir and any missing parents, like os.MkdirAll, and
// fsyncs the parent of every directory it creates, so that a file made
// durable inside dir cannot vanish with its directory in a crash.
func MkdirAll(dir string, perm os.FileMode) error {
	var missing []string // innermost first
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("create directory %s: %s is not a directory", dir, d)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("create directory %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, perm); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
		// Synced even when another process made d meanwhile: its entry
		// must be durable before anything inside it is acknowledged.
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// syncDir is SyncDir; tests replace it to see which directories are synced.
var syncDir = SyncDir

// SyncDir fsyncs the directory holding path, so that a create, rename or
// remove in it survives a crash.
func SyncDir(path string) error {
	dir := dirOf(path)
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic replaces path with data durably through the temp file
// "<path>.tmp" (see AtomicFile). A crash leaves either the old or the new
// content, never a mix.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	a := &AtomicFile{f: f, path: path}
	defer a.Discard()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return a.Commit()
}

// AtomicFile is the new content of a file, written under a temporary name
// in the same directory and put in place by Commit: fsync, close, rename
// over the file, fsync of the directory. Until the rename the old file is
// untouched; a crash leaves at worst the temp file behind, for its owner
// to recognise by name and remove.
type AtomicFile struct {
	f         *os.File
	path      string
	closed    bool
	closeErr  error // what Close returned
	committed bool
}

// CreateAtomic starts replacing path with a temp file in path's directory
// named after pattern as os.CreateTemp names it (the last "*" becomes a
// random string), with permissions perm. Defer Discard.
func CreateAtomic(path, pattern string, perm os.FileMode) (*AtomicFile, error) {
	f, err := os.CreateTemp(dirOf(path), pattern)
	if err != nil {
		return nil, err
	}
	a := &AtomicFile{f: f, path: path}
	if err := f.Chmod(perm); err != nil {
		a.Discard()
		return nil, fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	return a, nil
}

// File returns the temp file, to write the new content to.
func (a *AtomicFile) File() *os.File { return a.f }

// Close makes the content written so far durable and closes the temp
// file, without putting it in place yet (Commit does that).
func (a *AtomicFile) Close() error {
	if a.closed {
		return a.closeErr
	}
	a.closed = true
	if err := a.f.Sync(); err != nil {
		a.f.Close()
		a.closeErr = fmt.Errorf("sync %s: %w", a.f.Name(), err)
	} else if err := a.f.Close(); err != nil {
		a.closeErr = fmt.Errorf("close %s: %w", a.f.Name(), err)
	}
	return a.closeErr
}

// Commit closes the temp file as Close does, renames it over the path and
// fsyncs the directory. After a failed rename the old file is in place.
func (a *AtomicFile) Commit() error {
	if err := a.Close(); err != nil {
		return err
	}
	if err := os.Rename(a.f.Name(), a.path); err != nil {
		return fmt.Errorf("rename %s: %w", a.f.Name(), err)
	}
	a.committed = true
	return SyncDir(a.path)
}

// Discard closes and removes the temp file unless Commit renamed it. It
// is safe to defer right after creating the file.
func (a *AtomicFile) Discard() {
	if a.committed {
		return
	}
	if !a.closed {
		a.closed = true
		a.f.Close()
	}
	os.Remove(a.f.Name())
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			if i == 0 {
				return path[:1]
			}
			return path[:i]
		}
	}
	return "."
}

// DiskProblem names what is wrong with the disk when err says it cannot
// take data: "full" (no space, or the quota is used up), "read-only", or
// "" for any other error. Callers turn it into the sentence users see,
// because what they can do about it differs from an outage.
func DiskProblem(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "full"
	case errors.Is(err, syscall.EROFS):
		return "read-only"
	}
	return ""
}
