package filestore

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tokenledger/tokenledger"
)

// The journal is an append-only file next to the usage file, named
// "<file>.journal-<seq>". Each line is one committed batch:
//
//	<crc32c of the JSON, 8 lowercase hex digits> <JSON array of events>\n
//
// A line is written with one write and made durable with one fsync before
// any Add waiting on it returns.

// journalInfix separates the usage file's name from a journal's sequence
// number.
const journalInfix = ".journal-"

// castagnoli is the CRC-32C table used for journal line checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journalFile is one journal on disk.
type journalFile struct {
	path string
	seq  uint64
}

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
		if err != nil {
			continue
		}
		out = append(out, journalFile{path: filepath.Join(dir, name), seq: seq})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// appendJournalLine appends one journal line holding evs to dst. Metadata
// is never written.
func appendJournalLine(dst []byte, evs []tokenledger.Event) []byte {
	start := len(dst)
	dst = append(dst, "00000000 ["...)
	for i := range evs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEvent(dst, &evs[i])
	}
	dst = append(dst, ']')
	sum := crc32.Checksum(dst[start+9:], castagnoli)
	hex.Encode(dst[start:start+8], []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	return append(dst, '\n')
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

// readJournal reads the journal at path line by line and calls fn with
// the events of each valid line, in order. When last is true (the newest
// journal), an incomplete or unreadable final line is reported as torn
// instead of as corruption; anywhere else a bad line is a *CorruptError.
func readJournal(path string, r io.Reader, last bool, fn func([]tokenledger.Event) error) (journalRead, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	var off int64
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			return journalRead{validEnd: off}, nil
		}
		if err != nil && err != io.EOF {
			return journalRead{}, fmt.Errorf("read journal %s: %w", path, err)
		}
		complete := err == nil
		payload, reason := checkLine(line, complete)
		if reason != "" {
			atEnd := !complete
			if complete {
				if _, perr := br.Peek(1); perr == io.EOF {
					atEnd = true
				}
			}
			if atEnd && last {
				return journalRead{validEnd: off, torn: &TornTail{Path: path, Offset: off, Bytes: int64(len(line))}}, nil
			}
			if atEnd {
				reason += ", and a newer journal follows it"
			}
			return journalRead{}, &CorruptError{Path: path, Offset: off, Line: lineNo, Reason: reason}
		}
		evs, reason := decodeJournalEvents(payload)
		if reason != "" {
			return journalRead{}, &CorruptError{Path: path, Offset: off, Line: lineNo, Reason: reason}
		}
		if err := fn(evs); err != nil {
			return journalRead{}, err
		}
		off += int64(len(line))
	}
}

// checkLine verifies a journal line's checksum and returns its JSON
// payload, or a reason when the line is incomplete or does not verify.
func checkLine(line []byte, complete bool) ([]byte, string) {
	if !complete {
		return nil, "the line is incomplete (it has no line end)"
	}
	line = line[:len(line)-1]
	if len(line) < 10 || line[8] != ' ' {
		return nil, "the line does not start with a checksum"
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:8]); err != nil {
		return nil, "the line does not start with a checksum"
	}
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	payload := line[9:]
	if crc32.Checksum(payload, castagnoli) != want {
		return nil, "checksum mismatch"
	}
	return payload, ""
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

// checkStored checks an event read back from our own file or journal:
// it must be valid and carry an id and a timestamp. It normalises the
// timestamp to UTC and drops metadata.
func checkStored(e *tokenledger.Event) string {
	if e.ID == "" {
		return "an event has no id"
	}
	if e.Timestamp.IsZero() {
		return fmt.Sprintf("event %q has no timestamp", e.ID)
	}
	e.Timestamp = e.Timestamp.UTC()
	e.Metadata = nil
	if err := e.Validate(); err != nil {
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
