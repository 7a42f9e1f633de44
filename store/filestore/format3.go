package filestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// Version 3 is version 2 with each day's aggregates in a file of its own
// ("<file>.day-<date>-<generation>"), so that a checkpoint rewrites only
// the days that changed: the usage file is the manifest, its day lines
// name the day files (docs/file-format.md). The manifest's rename is the
// commit point; day files it does not name are removed.

const formatVersion3 = 3

// dayFile is the file that holds one day's aggregates: the snapshot
// generation that wrote it, and its size.
type dayFile struct {
	gen  uint64
	size int64
}

// dayFileName returns the file of day d's aggregates written by the
// snapshot of generation gen.
func dayFileName(path string, d tokenledger.Date, gen uint64) string {
	return fmt.Sprintf("%s.day-%s-%06d", path, d, gen)
}

// writeDayFile writes st durably (temp file, fsync, rename, fsync of the
// directory) as the one record of its day file of generation gen, and
// returns the file's size.
func writeDayFile(path string, st dayagg.State, gen uint64) (int64, error) {
	name := dayFileName(path, st.Day.Date, gen)
	b, err := json.Marshal(toDay2(st))
	if err != nil {
		return 0, err
	}
	line, err := journal.AppendRecord(nil, b)
	if err != nil {
		return 0, err
	}
	tmp, err := journal.CreateAtomic(name, filepath.Base(path)+".tmp-*", 0o644)
	if err != nil {
		return 0, fmt.Errorf("write day file: %w", err)
	}
	defer tmp.Discard()
	if _, err := tmp.File().Write(line); err != nil {
		return 0, fmt.Errorf("write day file %s: %w", name, err)
	}
	if err := tmp.Commit(); err != nil {
		return 0, fmt.Errorf("write day file %s: %w", name, err)
	}
	return int64(len(line)), nil
}

// readDayFile reads the day file of date and generation gen that the
// manifest at path names. Damage is a *CorruptError naming the day file;
// its absence is a *MissingError.
func readDayFile(path string, date tokenledger.Date, gen uint64) (dayagg.State, int64, error) {
	name := dayFileName(path, date, gen)
	if !exists(name) {
		return dayagg.State{}, 0, &MissingError{Path: path, Missing: name, Role: "the aggregates of day " + string(date)}
	}
	var st dayagg.State
	n := 0
	size, torn, err := journal.Scan(name, 0, func(payload []byte, next int64) error {
		n++
		var d day2
		reason := ""
		if n > 1 {
			reason = "a day file holds one line"
		} else if err := json.Unmarshal(payload, &d); err != nil {
			reason = "the day is not valid JSON: " + jsonReason(err)
		} else if d.Date != date || d.Gen != 0 || d.End != nil {
			reason = fmt.Sprintf("the file holds day %q, not the aggregates of day %s", d.Date, date)
		} else {
			st, reason = d.state()
		}
		if reason != "" {
			return &CorruptError{Path: name, Offset: next - int64(len(payload)) - 10, Line: n, Reason: reason}
		}
		return nil
	})
	var ce *journal.CorruptError
	switch {
	case errors.As(err, &ce):
		return st, 0, &CorruptError{Path: name, Offset: ce.Offset, Line: ce.Line, Reason: ce.Reason}
	case err != nil:
		return st, 0, err
	case torn != nil:
		return st, 0, &CorruptError{Path: name, Offset: torn.Offset, Line: torn.Line, Reason: torn.Reason}
	case n == 0:
		return st, 0, corruptAt(name, 0, "the day file is empty")
	}
	return st, size, nil
}

// dayRefs returns the manifest's day lines for files, oldest first.
func dayRefs(files map[tokenledger.Date]dayFile) []day2 {
	out := make([]day2, 0, len(files))
	for d, f := range files {
		out = append(out, day2{Date: d, Gen: f.gen})
	}
	sortDays(out)
	return out
}

// removeStaleDayFiles removes the day files of the usage file at path that
// files does not name: those of a checkpoint that a crash stopped before
// its manifest's rename, and those a newer generation replaced.
func removeStaleDayFiles(path string, files map[tokenledger.Date]dayFile) {
	dir, prefix := filepath.Dir(path), filepath.Base(path)+".day-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	named := make(map[string]bool, len(files))
	for d, f := range files {
		named[filepath.Base(dayFileName(path, d, f.gen))] = true
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, prefix) && !named[n] {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
}
