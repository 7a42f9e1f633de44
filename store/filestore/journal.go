package filestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// The journal is an append-only file next to the usage file, named
// "<file>.journal-<seq>". Each line is one committed batch, framed as an
// store/internal/journal record:
//
//	<crc32c of the JSON, 8 lowercase hex digits> <JSON array of events>\n
//
// A line is written with one write and made durable with one fsync before
// any Add waiting on it returns. store/internal/journal frames, verifies and
// reads the lines (torn tail or corruption); this file knows what they
// hold and that only the newest journal may end in a torn line.

// journalInfix separates the usage file's name from a journal's sequence
// number.
const journalInfix = ".journal-"

// journalFile is one journal on disk.
type journalFile struct {
	path string
	seq  uint64
}

// maxJournalSeq bounds the number in a journal's name and so the file's
// "foldedJournal", the number of a journal folded into it. A store
// starting one journal a second would take 292 billion years to reach
// it; past it, a write is refused rather than a number wrapped around (a
// wrapped number would make new journals look folded already, and their
// events be dropped).
const maxJournalSeq = 1 << 63

// journalName returns the name of journal seq of the usage file at path.
func journalName(path string, seq uint64) string {
	return fmt.Sprintf("%s%s%06d", path, journalInfix, seq)
}

// listJournals returns the journals of the usage file at path, oldest
// (lowest sequence number) first. Files whose suffix is not all digits
// (such as a journal moved aside by Repair) are not journals.
func listJournals(path string) ([]journalFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list journals in %s: %w", dir, err)
	}
	prefix := base + journalInfix
	var out []journalFile
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || e.IsDir() {
			continue
		}
		digits := name[len(prefix):]
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		seq, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || seq > maxJournalSeq {
			return nil, fmt.Errorf("%s: a journal's number must be at most 2^63; this file was not written by tokenledger (move it aside)", filepath.Join(dir, name))
		}
		out = append(out, journalFile{path: filepath.Join(dir, name), seq: seq})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// Files returns the files that hold the usage data at path: the usage
// file itself when it exists, then its journals, oldest first, then (in
// versions 2 and 3) its id indexes and (in version 3) its day files. A store
// stopped without a clean Close may have only journals. Files moved
// aside (by Repair, or renamed after a migration) are not listed.
func Files(path string) ([]string, error) {
	var out []string
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		out = append(out, path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	journals, err := listJournals(path)
	if err != nil {
		return nil, err
	}
	for _, j := range journals {
		out = append(out, j.path)
	}
	indexes, err := filepath.Glob(path + ".index-*")
	if err != nil {
		return nil, err
	}
	for _, name := range indexes {
		if strings.Trim(name[len(path)+len(".index-"):], "0123456789") == "" {
			out = append(out, name)
		}
	}
	days, err := filepath.Glob(path + ".day-*")
	if err != nil {
		return nil, err
	}
	return append(out, days...), nil
}

// appendBatch appends the payload of the journal line holding evs to dst:
// a JSON array of the events' stored form. Metadata is never written. The
// committer frames it with journal.AppendRecord.
func appendBatch(dst []byte, evs []tokenledger.Event) []byte {
	dst = append(dst, '[')
	for i := range evs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEvent(dst, &evs[i])
	}
	return append(dst, ']')
}

// TornTail describes the incomplete last line of the newest journal: a
// batch whose write was cut short by a crash. It was never acknowledged,
// so dropping it loses nothing that was promised.
type TornTail struct {
	// Path is the journal.
	Path string
	// Offset is where the incomplete line starts; the journal is valid up
	// to here.
	Offset int64
	// Bytes is the length of the incomplete line.
	Bytes int64
}

// journalRead is what readJournal found.
type journalRead struct {
	// validEnd is the offset just after the last complete, valid line.
	validEnd int64
	// torn is the incomplete last line, if any.
	torn *TornTail
}

// readJournal reads the journal at path, open as r, and calls fn with the
// events of each valid line, in order. When last is true (the newest
// journal), an incomplete or unreadable final line is reported as torn
// instead of as corruption; anywhere else a bad line is a *CorruptError.
// A line that passes its checksum but does not hold valid events is
// corruption even at the end: a crash cannot produce it.
func readJournal(path string, r io.Reader, last bool, fn func([]tokenledger.Event) error) (journalRead, error) {
	var off int64
	lineNo := 0
	end, torn, err := journal.ScanReader(path, r, 0, func(payload []byte, next int64) error {
		lineNo++
		evs, reason := decodeJournalEvents(payload)
		if reason != "" {
			return &CorruptError{Path: path, Offset: off, Line: lineNo, Reason: reason}
		}
		off = next
		return fn(evs)
	})
	if ce := (*journal.CorruptError)(nil); errors.As(err, &ce) {
		return journalRead{}, &CorruptError{Path: ce.Path, Offset: ce.Offset, Line: ce.Line, Reason: ce.Reason}
	}
	if err != nil {
		return journalRead{}, err
	}
	if torn == nil {
		return journalRead{validEnd: end}, nil
	}
	if !last {
		return journalRead{}, &CorruptError{Path: path, Offset: torn.Offset, Line: torn.Line, Reason: torn.Reason + ", and a newer journal follows it"}
	}
	return journalRead{validEnd: end, torn: &TornTail{Path: path, Offset: torn.Offset, Bytes: torn.Bytes}}, nil
}

// decodeJournalEvents parses a verified journal payload and checks every
// event as a stored event.
func decodeJournalEvents(payload []byte) ([]tokenledger.Event, string) {
	stored, ok := parseEventArray(payload)
	if !ok {
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&stored); err != nil {
			return nil, "the batch is not a valid JSON array of events: " + jsonReason(err)
		}
		if dec.More() {
			return nil, "the line holds more than one JSON value"
		}
	}
	evs := make([]tokenledger.Event, len(stored))
	for i := range stored {
		var reason string
		if evs[i], reason = stored[i].event(); reason != "" {
			return nil, fmt.Sprintf("event %d: %s", i, reason)
		}
	}
	return evs, ""
}

// checkStored checks an event read back from our own file or journal by
// tokenledger.CheckStored and says what is wrong in a phrase that names
// it. It normalises the timestamp to UTC and drops metadata.
func checkStored(e *tokenledger.Event) string {
	if e.ID == "" {
		return "an event has no id"
	}
	if e.Timestamp.IsZero() {
		return fmt.Sprintf("event %q has no timestamp", e.ID)
	}
	e.Metadata = nil
	if err := tokenledger.CheckStored(e); err != nil {
		return fmt.Sprintf("event %q: %v", e.ID, err)
	}
	return ""
}

// jsonReason turns an encoding/json error into a short phrase.
func jsonReason(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the JSON ends too early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
