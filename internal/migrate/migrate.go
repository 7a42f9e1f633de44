// Package migrate imports a local usage file — the original service's JSON
// array or tokenledger's own format — into a database store, exactly once.
//
// Every event keeps its id, and the database's per-event claim counts an id
// once, so running the migration again, or on several instances at the same
// moment, never counts a record twice; it only adds, so it never deletes or
// overwrites what the database already holds. After a successful import the
// file is renamed to "<name>.migrated"; where it cannot be renamed (a
// read-only deployment) a marker in the database, keyed by the file's
// content hash, keeps later starts from reading it again.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/filestore"
)

// Marker is implemented by database stores that can remember that a file
// was migrated (a small key beside the usage data).
type Marker interface {
	// HasMark reports whether SetMark(name) was called before. On error it
	// returns ErrUnavailable (wrapped) when the database cannot be reached.
	HasMark(ctx context.Context, name string) (bool, error)
	// SetMark records name. On error it returns ErrUnavailable (wrapped)
	// when the database cannot be reached.
	SetMark(ctx context.Context, name string) error
}

// Options tune Run.
type Options struct {
	// Now and RetentionDays decide which records are too old to import;
	// they must match the Service's.
	Now           tokenledger.Clock
	RetentionDays int
	// DryRun reads and counts without writing, renaming or marking.
	DryRun bool
	// IgnoreMark imports the file even when the database holds its marker
	// (an import someone asked for by hand, say after a reset); the marker
	// is still left afterwards.
	IgnoreMark bool
	// Logger receives the result lines; slog.Default() when nil.
	Logger *slog.Logger
	// Progress, when set, is called after each batch with the records
	// imported so far and the total to import.
	Progress func(done, total int)
}

// Status is what the one-time import of the local file into the database
// did over every file it read, as reported by GET /api/test.
type Status struct {
	Ran      bool `json:"ran"`
	Migrated int  `json:"migrated"`
	Skipped  int  `json:"skipped"`
	// AlreadyInDatabase counts records the database had counted before
	// (an earlier or concurrent migration). Extension.
	AlreadyInDatabase int `json:"alreadyInDatabase,omitempty"`
	// File is the file read, "" when there was none. Extension.
	File string `json:"file,omitempty"`
	// AlreadyMigrated is true when a database marker showed File had been
	// imported before, so it was not read again. Extension.
	AlreadyMigrated bool `json:"alreadyMigrated,omitempty"`
	// Error says why the last attempt did not finish; it is retried.
	// Extension.
	Error string `json:"error,omitempty"`
}

// Add counts one file's Result into st.
func (st *Status) Add(res Result) {
	if res.Ran {
		st.Ran, st.File = true, res.File
	}
	if res.AlreadyMigrated {
		st.AlreadyMigrated, st.File = true, res.File
	}
	st.Migrated += res.Migrated
	st.Skipped += res.Skipped
	st.AlreadyInDatabase += res.AlreadyThere
}

// Result says what a migration did. It is shown by GET /api/test.
type Result struct {
	// Ran is true when a file was found and read.
	Ran bool `json:"ran"`
	// File is the file migrated, "" when there was none.
	File string `json:"file,omitempty"`
	// Format is "original" or "tokenledger".
	Format string `json:"format,omitempty"`
	// Records counts what the file held.
	Records int `json:"records"`
	// Migrated counts events the database counted for the first time.
	Migrated int `json:"migrated"`
	// AlreadyThere counts events the database had counted before (an
	// earlier or concurrent migration, or the same event sent live).
	AlreadyThere int `json:"alreadyInDatabase"`
	// Skipped is SkippedExpired + SkippedInvalid + DuplicatesInFile.
	Skipped          int `json:"skipped"`
	SkippedExpired   int `json:"skippedExpired"`
	SkippedInvalid   int `json:"skippedInvalid"`
	DuplicatesInFile int `json:"duplicatesInFile"`
	// RenamedTo is where the file went after success, "" when it stayed.
	RenamedTo string `json:"renamedTo,omitempty"`
	// Marked is true when a database marker was left instead of a rename.
	Marked bool `json:"marked,omitempty"`
	// NameKept is true when the file already had the name of a migrated
	// file (an import of <name>.migrated by hand), which it keeps.
	NameKept bool `json:"nameKept,omitempty"`
	// AlreadyMigrated is true when a marker said the file was done before.
	AlreadyMigrated bool `json:"alreadyMigrated,omitempty"`
	// DryRun is true when nothing was written.
	DryRun bool `json:"dryRun,omitempty"`
}

// MigratedSuffix is added to a file's name after a successful migration.
const MigratedSuffix = ".migrated"

// Run imports the file at path into db. A missing file is not an error
// (Result.Ran is false). A file that cannot be read is an error naming it,
// and nothing is imported. When db fails midway Run returns the error; what
// was imported stays, and running again finishes the job without counting
// anything twice.
func Run(ctx context.Context, path string, db tokenledger.Store, o Options) (Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	res := Result{DryRun: o.DryRun}
	// The usage file and its journals: a file store stopped without a
	// clean Close may have left only journals, which hold acknowledged
	// events all the same.
	files, err := filestore.Files(path)
	if err != nil {
		return res, fmt.Errorf("look for %s: %w", path, err)
	}
	if len(files) == 0 {
		return res, nil
	}
	if !o.DryRun {
		unlock, err := lock(path)
		if err != nil {
			return res, err
		}
		defer unlock()
	}
	sum, err := fingerprint(files)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil // another instance renamed them meanwhile
	}
	if err != nil {
		return res, err
	}
	mark := "migrated:" + sum
	marker, canMark := tokenledger.FindStore[Marker](db)
	if canMark && !o.DryRun && !o.IgnoreMark {
		done, err := marker.HasMark(ctx, mark)
		if err != nil {
			return res, fmt.Errorf("check whether %s was migrated: %w", path, err)
		}
		if done {
			res.AlreadyMigrated = true
			res.File = path
			return res, nil
		}
	}

	scanOpts := filestore.ScanOptions{Now: o.Now, RetentionDays: o.RetentionDays}
	// A first, read-only pass checks the whole file and counts what there
	// is to import, so that a damaged file imports nothing at all.
	counted, err := filestore.Scan(path, scanOpts, func([]tokenledger.Event) error { return nil })
	if err != nil {
		return res, fmt.Errorf("read %s: %w", path, err)
	}
	total := counted.Valid
	if o.Progress != nil {
		o.Progress(0, total)
	}
	done := 0
	scan, err := filestore.Scan(path, scanOpts, func(batch []tokenledger.Event) error {
		if !o.DryRun {
			b, err := tokenledger.StoredBatch(batch)
			if err != nil {
				return err
			}
			r, err := db.Add(ctx, b)
			if err != nil {
				return err
			}
			res.Migrated += r.Accepted()
			res.AlreadyThere += r.Duplicates()
		} else {
			res.Migrated += len(batch)
		}
		done += len(batch)
		if o.Progress != nil {
			o.Progress(done, total)
		}
		return nil
	})
	res.Ran, res.File, res.Format = true, path, scan.Format
	res.Records = scan.Records
	res.SkippedExpired, res.SkippedInvalid, res.DuplicatesInFile = scan.Expired, scan.Invalid, scan.Duplicates
	res.Skipped = scan.Expired + scan.Invalid + scan.Duplicates
	for _, r := range scan.InvalidRecords {
		log.Warn(fmt.Sprintf("⚠️ Skipped invalid record %d (id %q) of %s: %s", r.Index, r.ID, path, r.Reason))
	}
	if err != nil {
		return res, fmt.Errorf("migrate %s after %d records: %w", path, done, err)
	}
	if o.DryRun {
		log.Info(fmt.Sprintf("📊 Dry run: would migrate %d records from file to database (%d expired, %d invalid, %d duplicates skipped)",
			res.Migrated, res.SkippedExpired, res.SkippedInvalid, res.DuplicatesInFile))
		return res, nil
	}
	log.Info(fmt.Sprintf("📊 Migrated %d records from file to database", res.Migrated),
		slog.String("file", path), slog.Int("alreadyInDatabase", res.AlreadyThere),
		slog.Int("skippedExpired", res.SkippedExpired), slog.Int("skippedInvalid", res.SkippedInvalid),
		slog.Int("duplicatesInFile", res.DuplicatesInFile))

	// The marker is left even when the file can be renamed: a copy of the
	// same file elsewhere (say, in a read-only deployment too large to
	// import within a serverless request's budget) is then skipped at
	// once instead of being imported again.
	var merr error
	if canMark {
		merr = marker.SetMark(ctx, mark)
		res.Marked = merr == nil
	}
	if IsMigratedName(path) {
		// Imported again by hand (say, after a reset): it already says
		// that it was migrated, and <name>.migrated.migrated would say
		// nothing more.
		res.NameKept = true
		files = nil
	}
	renamed, rerr := renameMigrated(files)
	switch {
	case res.NameKept:
		log.Info(fmt.Sprintf("📦 %s keeps its name: it is named as a migrated file already", path))
	case rerr == nil:
		res.RenamedTo = renamed
		log.Info(fmt.Sprintf("📦 Renamed %s to %s so it is not migrated again", path, renamed))
		if merr != nil {
			log.Warn(fmt.Sprintf("⚠️ Could not leave a marker for %s in the database (%v); a copy of it elsewhere would be imported again (harmless: every record counts once)", path, merr))
		}
	case canMark:
		if merr != nil {
			return res, fmt.Errorf("migrated %s but could neither rename it (%v) nor mark it in the database: %w", path, rerr, merr)
		}
		log.Info(fmt.Sprintf("📦 Could not rename %s (%v); left a marker in the database so it is not migrated again", path, rerr))
	default:
		log.Warn(fmt.Sprintf("⚠️ Could not rename %s after migrating it (%v); it will be read again on the next start (harmless: every record counts once)", path, rerr))
	}
	return res, nil
}

// lock takes the usage file's process lock for the migration: a file
// store still running on the file (a file-mode serve) appends to its
// journal, and renaming that from under it would send every event it
// acknowledges afterwards into a file nobody reads. Where the lock file
// cannot be created because the directory is read-only, no store can be
// writing there either, and the migration goes on without it.
func lock(path string) (unlock func(), err error) {
	release, err := filestore.Lock(path)
	switch {
	case err == nil:
		return func() { _ = release() }, nil
	case errors.Is(err, filestore.ErrLocked):
		return nil, fmt.Errorf("%s is in use by another tokenledger process (it holds %s.lock): a serve on the file, or another migration of it; migrate it once that process has stopped (serve, on a database, tries again by itself)", path, path)
	case errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission):
		return func() {}, nil
	default:
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
}

// fingerprint returns the SHA-256 of the files' names and contents, in
// order, hex-encoded. For a single file (the original service's) it is
// the SHA-256 of its content, as the markers of earlier versions were.
func fingerprint(files []string) (string, error) {
	h := sha256.New()
	for i, path := range files {
		if i > 0 {
			fmt.Fprintf(h, "\x00%s\x00", filepath.Base(path))
		}
		if err := hashFile(h, path); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashFile writes the content of the file at path to w.
func hashFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return err
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// renameMigrated renames each of files (the usage file and its
// journals) with MigratedSuffix, and returns the first new name. A name
// already taken (by an earlier migration of a file at the same path,
// whose expired records exist nowhere else) is never replaced: the file
// gets ".migrated.2", ".migrated.3", …. A file already gone counts as
// renamed: another instance migrated it at the same time.
func renameMigrated(files []string) (string, error) {
	var first string
	for _, path := range files {
		to, err := renameAside(path)
		if err != nil {
			return "", err
		}
		if first == "" {
			first = to
		}
	}
	return first, nil
}

// IsMigratedName reports whether path is named as a migrated file:
// ending in MigratedSuffix, or in MigratedSuffix and ".2" to
// "."+MigratedNames.
func IsMigratedName(path string) bool {
	if strings.HasSuffix(path, MigratedSuffix) {
		return true
	}
	i := strings.LastIndex(path, MigratedSuffix+".")
	if i < 0 {
		return false
	}
	n, err := strconv.Atoi(path[i+len(MigratedSuffix)+1:])
	return err == nil && n >= 2 && n <= MigratedNames && strconv.Itoa(n) == path[i+len(MigratedSuffix)+1:]
}

// MigratedCopies returns the names an earlier migration gave the file at
// path (path+MigratedSuffix, then ".2", … in that order) that exist, so
// that a migration of a file that is gone can say where it went.
func MigratedCopies(path string) []string {
	var out []string
	for i := 1; i <= MigratedNames; i++ {
		to := path + MigratedSuffix
		if i > 1 {
			to = fmt.Sprintf("%s%s.%d", path, MigratedSuffix, i)
		}
		if _, err := os.Lstat(to); err == nil {
			out = append(out, to)
		}
	}
	return out
}

// MigratedNames is how many names renameAside tries: path+MigratedSuffix,
// then with ".2" up to "."+MigratedNames appended.
const MigratedNames = 100

// renameAside renames path to the first free name of path+MigratedSuffix,
// path+MigratedSuffix+".2", … and returns it.
func renameAside(path string) (string, error) {
	for i := 1; i <= MigratedNames; i++ {
		to := path + MigratedSuffix
		if i > 1 {
			to = fmt.Sprintf("%s%s.%d", path, MigratedSuffix, i)
		}
		if _, err := os.Lstat(to); err == nil {
			continue
		}
		if err := rename(path, to); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return to, nil
			}
			return "", err
		}
		return to, nil
	}
	return "", fmt.Errorf("rename %s: names %s%s to %s%s.%d are all taken", path, path, MigratedSuffix, path, MigratedSuffix, MigratedNames)
}

// rename is os.Rename; tests replace it to act out a read-only deployment.
var rename = os.Rename
