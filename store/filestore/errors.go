package filestore

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// Errors that callers match with errors.Is.
var (
	// ErrLocked is returned by Open and Repair when another process (or
	// another Store in this process) holds the file.
	ErrLocked = errors.New("token usage file is in use")

	// ErrCorrupt is matched by every *CorruptError: the file or its journal
	// cannot be read. Open refuses such a file and never overwrites it;
	// Repair moves it aside.
	ErrCorrupt = errors.New("token usage file is corrupt")

	// ErrUnknownVersion is returned for a file written in a format version
	// this package does not know (a newer tokenledger wrote it). Repair
	// refuses to move such a file: its data is not damaged.
	ErrUnknownVersion = errors.New("unknown token usage file version")

	// ErrNothingToRepair is returned by Repair when the file and its
	// journals are healthy; nothing is moved.
	ErrNothingToRepair = errors.New("nothing to repair")
)

// CorruptError says which file cannot be read, where, and why. It matches
// ErrCorrupt.
type CorruptError struct {
	// Path is the file that cannot be read: the usage file or a journal.
	Path string
	// Offset is the byte offset of the problem within the file.
	Offset int64
	// Line is the 1-based line of Offset.
	Line int
	// Reason says what is wrong, e.g. "checksum mismatch".
	Reason string
}

// Error returns one sentence naming the file, the place and the way out.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("token usage file %s is corrupt at byte %d (line %d): %s; it was left unchanged, and a repair moves it aside and starts fresh",
		e.Path, e.Offset, e.Line, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true for a *CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// corruptAt returns a *CorruptError for path at byte off, finding the line
// by reading the file up to off. When off points at white space or a
// separator, it moves on to the next significant byte so that the line is
// the one a person has to look at.
func corruptAt(path string, off int64, format string, args ...any) *CorruptError {
	off, line := locate(path, off)
	return &CorruptError{Path: path, Offset: off, Line: line, Reason: fmt.Sprintf(format, args...)}
}

// locate returns the offset of the first significant byte at or after off
// (skipping white space and commas) and its 1-based line number. If the
// file cannot be read it returns off and line 0.
func locate(path string, off int64) (int64, int) {
	f, err := os.Open(path)
	if err != nil {
		return off, 0
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	line := 1
	var pos int64
	for ; pos < off; pos++ {
		b, err := br.ReadByte()
		if err != nil {
			return pos, line
		}
		if b == '\n' {
			line++
		}
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return pos, line
		}
		switch b {
		case ' ', '\t', '\r', ',':
		case '\n':
			line++
		default:
			return pos, line
		}
		pos++
	}
}

// sentinelError is an error with its own message that matches a sentinel.
type sentinelError struct {
	sentinel error
	msg      string
}

func (e *sentinelError) Error() string        { return e.msg }
func (e *sentinelError) Is(target error) bool { return target == e.sentinel }

// unavailable wraps err as tokenledger.ErrUnavailable with context.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{tokenledger.ErrUnavailable}, args...)...)
}

// writeFailed is unavailable for a failed journal write, with a sentence
// for callers when the disk is full or read-only: what they can do about
// it differs from an outage, and the generic answer would hide it.
func writeFailed(cause error, format string, args ...any) error {
	err := unavailable(format, args...)
	why := journal.DiskProblem(cause)
	if why == "" {
		return err
	}
	return &tokenledger.UnavailableError{Msg: "Nothing was stored: the disk that holds the usage file is " + why + "; logging resumes by itself once it can be written", Err: err}
}
