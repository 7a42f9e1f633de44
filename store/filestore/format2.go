package filestore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// Version 2 of the usage file is a snapshot of the aggregates, not of the
// events (docs/file-format.md): store/internal/journal lines, each a checksummed
// JSON record,
//
//	<crc> {"format":"tokenledger","version":2,"covered":12,"checkpoints":[...],...}
//	<crc> {"date":"2026-11-27","day":{...},"users":{...},"sessions":[...]}
//	...
//	<crc> {"end":91}
//
// The events stay in the journals, which are kept as immutable segments;
// "covered" is the last journal the aggregates hold, and each checkpoint
// names journals and the id index ("<file>.index-<to>") of their events.

const formatVersion2 = 2

// checkpoint is a range of sealed journals and their id index.
type checkpoint struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	// LastDay is the newest day the range holds events of: once it is
	// outside the retention window, the range and its index are removed.
	LastDay tokenledger.Date `json:"lastDay"`
}

// header2 is the first line of a version 2 usage file.
type header2 struct {
	Format        string       `json:"format"`
	Version       int          `json:"version"`
	UpdatedAt     time.Time    `json:"updatedAt"`
	RetentionDays int          `json:"retentionDays"`
	Covered       uint64       `json:"covered"`
	Checkpoints   []checkpoint `json:"checkpoints"`
	// Generation counts the version 3 manifests written; it names the
	// day files a checkpoint writes.
	Generation uint64 `json:"generation,omitempty"`
}

// snapshot2 is a version 2 usage file read back.
type snapshot2 struct {
	header2
	days []dayagg.State
	// files names the day file of each day read (version 3), and size is
	// the manifest's size plus theirs.
	files map[tokenledger.Date]dayFile
	size  int64
	// firstDay is the oldest day in the file, expired or not.
	firstDay tokenledger.Date
}

// indexName returns the id index of the checkpoint ending at journal to.
func indexName(path string, to uint64) string {
	return fmt.Sprintf("%s.index-%06d", path, to)
}

// isVersion2 reports whether the file at path starts as a version 2 file
// does: with a line checksum, where version 1 starts with JSON.
func isVersion2(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [9]byte
	n, _ := f.Read(b[:])
	if n < 9 || b[8] != ' ' {
		return false
	}
	for _, c := range b[:8] {
		if _, ok := hexDigit(c); !ok {
			return false
		}
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// readSnapshot2 reads a version 2 usage file, skipping days before
// oldest. Damage is a *CorruptError naming the file and offset; a newer
// version is ErrUnknownVersion.
func readSnapshot2(path string, oldest tokenledger.Date) (*snapshot2, error) {
	out := snapshot2{files: map[tokenledger.Date]dayFile{}}
	line, ended := 0, false
	var prev tokenledger.Date
	_, torn, err := journal.Scan(path, 0, func(payload []byte, next int64) error {
		line++
		off := next - int64(len(payload)) - 10
		if ended {
			return &CorruptError{Path: path, Offset: off, Line: line, Reason: "a line follows the end line"}
		}
		if line == 1 {
			if err := json.Unmarshal(payload, &out.header2); err != nil {
				return &CorruptError{Path: path, Offset: off, Line: line, Reason: "the header is not valid JSON: " + jsonReason(err)}
			}
			if out.Format != formatName {
				return &CorruptError{Path: path, Offset: off, Line: line, Reason: fmt.Sprintf("\"format\" is %q, not %q", out.Format, formatName)}
			}
			if out.Version != formatVersion2 && out.Version != formatVersion3 {
				return &sentinelError{ErrUnknownVersion, fmt.Sprintf("token usage file %s is version %d; this tokenledger reads versions 1 to 3 (a newer tokenledger wrote it)", path, out.Version)}
			}
			return checkCheckpoints(path, off, out.Covered, out.Checkpoints)
		}
		var d day2
		if err := json.Unmarshal(payload, &d); err != nil {
			return &CorruptError{Path: path, Offset: off, Line: line, Reason: "the day is not valid JSON: " + jsonReason(err)}
		}
		if d.End != nil {
			if *d.End != line-2 {
				return &CorruptError{Path: path, Offset: off, Line: line, Reason: fmt.Sprintf("the end line counts %d days, the file holds %d", *d.End, line-2)}
			}
			ended = true
			return nil
		}
		if _, perr := tokenledger.ParseDate(string(d.Date)); perr != nil || d.Date <= prev {
			return &CorruptError{Path: path, Offset: off, Line: line, Reason: fmt.Sprintf("day %q is not a date after the one before it", d.Date)}
		}
		prev = d.Date
		if out.firstDay == "" {
			out.firstDay = d.Date
		}
		if out.Version == formatVersion3 {
			if d.Gen == 0 || d.Gen > out.Generation || d.Counters != nil || len(d.Models)+len(d.Users)+len(d.Sessions) > 0 {
				return &CorruptError{Path: path, Offset: off, Line: line, Reason: fmt.Sprintf("day %s does not name a day file of generation 1 to %d", d.Date, out.Generation)}
			}
			if d.Date < oldest {
				// Expired: not read; named until the next checkpoint drops it.
				out.files[d.Date] = dayFile{gen: d.Gen}
				return nil
			}
			st, size, err := readDayFile(path, d.Date, d.Gen)
			if err != nil {
				return err
			}
			out.days = append(out.days, st)
			out.files[d.Date] = dayFile{gen: d.Gen, size: size}
			out.size += size
			return nil
		}
		st, reason := d.state()
		if reason == "" && d.Gen != 0 {
			reason = "a version 2 file names no day files"
		}
		if reason != "" {
			return &CorruptError{Path: path, Offset: off, Line: line, Reason: reason}
		}
		if d.Date >= oldest {
			out.days = append(out.days, st)
		}
		return nil
	})
	var ce *journal.CorruptError
	switch {
	case errors.As(err, &ce):
		return nil, &CorruptError{Path: path, Offset: ce.Offset, Line: ce.Line, Reason: ce.Reason}
	case err != nil:
		return nil, err
	case torn != nil:
		return nil, &CorruptError{Path: path, Offset: torn.Offset, Line: torn.Line, Reason: torn.Reason}
	case !ended:
		return nil, corruptAt(path, 0, "the file ends before its end line (it was cut short)")
	}
	if st, err := os.Stat(path); err == nil {
		out.size += st.Size()
	}
	return &out, nil
}

// checkCheckpoints checks that the checkpoints are ordered ranges within
// the covered journals.
func checkCheckpoints(path string, off int64, covered uint64, cps []checkpoint) error {
	if covered > maxJournalSeq {
		return &CorruptError{Path: path, Offset: off, Line: 1, Reason: "\"covered\" is above 2^63"}
	}
	var prevTo uint64
	for i, c := range cps {
		if c.From > c.To || c.To > covered || (i > 0 && c.From <= prevTo) {
			return &CorruptError{Path: path, Offset: off, Line: 1, Reason: fmt.Sprintf("checkpoint %d (journals %d to %d) is not an ordered range within the covered journals", i, c.From, c.To)}
		}
		prevTo = c.To
	}
	return nil
}

// covers reports whether a checkpoint holds journal seq.
func covers(cps []checkpoint, seq uint64) bool {
	for _, c := range cps {
		if seq >= c.From && seq <= c.To {
			return true
		}
	}
	return false
}

// writeSnapshot2 writes a usage file of version h.Version (3 when 0: the
// manifest, whose days name their day files) durably (temp file, fsync,
// rename, fsync of the directory). before, when set, runs after the temp
// file is durable and before the rename (it keeps a backup).
func writeSnapshot2(path string, h header2, days []day2, before func() error) (int64, error) {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := createSnapshot(path, filepath.Base(path)+".tmp-*", mode)
	if err != nil {
		return 0, fmt.Errorf("write token usage file: %w", err)
	}
	defer tmp.Discard()
	bw := bufio.NewWriterSize(tmp.File(), 1<<20)
	var size int64
	var line []byte
	put := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		line, err = journal.AppendRecord(line[:0], b)
		if err != nil {
			return err
		}
		size += int64(len(line))
		_, err = bw.Write(line)
		return err
	}
	h.Format = formatName
	if h.Version == 0 {
		h.Version = formatVersion3
	}
	err = put(h)
	for i := 0; err == nil && i < len(days); i++ {
		err = put(days[i])
	}
	if err == nil {
		n := len(days)
		err = put(day2{End: &n})
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil && before != nil {
		err = before()
	}
	if err == nil {
		err = snapshotHook(context.Background())
	}
	if err == nil {
		err = tmp.Commit()
	}
	if err != nil {
		return 0, fmt.Errorf("write token usage file %s: %w", path, err)
	}
	return size, nil
}

// snapshotHook runs between a snapshot's fsync and its rename; the crash
// tests stop the process there.
var snapshotHook = func(context.Context) error { return nil }
