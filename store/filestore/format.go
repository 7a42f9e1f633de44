package filestore

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// The usage file holds the events, normalised and without metadata,
// grouped by day (see docs/file-format.md):
//
//	{
//	  "format": "tokenledger",
//	  "version": 1,
//	  "updatedAt": "...",
//	  "retentionDays": 90,
//	  "foldedJournal": 7,
//	  "days": [
//	    {
//	      "date": "2026-11-27",
//	      "summary": {...},
//	      "events": [
//	        {"id": ..., ...},
//	        ...
//	      ]
//	    }
//	  ]
//	}
//
// Or it is the original service's array of records, read but never written.

const (
	// formatName is the value of "format" in our files.
	formatName = "tokenledger"
	// formatVersion is the only version this package reads and writes.
	formatVersion = 1
)

// fileKind says what a usage file holds.
type fileKind int

const (
	kindNone     fileKind = iota // no file
	kindOurs                     // our format
	kindOriginal                 // the original service's array
	kindV2                       // our format, version 2 (format2.go)
)

// String names the kind for ScanResult.Format and log lines.
func (k fileKind) String() string {
	switch k {
	case kindOurs, kindV2:
		return FormatTokenledger
	case kindOriginal:
		return FormatOriginal
	}
	return ""
}

// usageReader is an open usage file positioned after its first token.
type usageReader struct {
	path string
	f    *os.File
	dec  *json.Decoder
	kind fileKind
	size int64
	// folded is "foldedJournal": journals up to it are in this file.
	folded uint64
	// inDays is true when the header was read up to the "days" array.
	inDays bool
}

// openSnapshot opens the usage file at path and reads enough to know its
// kind, and for our format its header. A missing file gives kind none and
// a nil error. f must be closed with close.
func openSnapshot(path string) (*usageReader, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &usageReader{path: path, kind: kindNone}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open token usage file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open token usage file: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("token usage file %s is a directory", path)
	}
	s := &usageReader{path: path, f: f, size: st.Size()}
	s.dec = json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	s.dec.DisallowUnknownFields()
	s.dec.UseNumber()
	tok, err := s.dec.Token()
	if err != nil {
		s.close()
		if err == io.EOF {
			return nil, &CorruptError{Path: path, Line: 1, Reason: "the file is empty"}
		}
		return nil, s.syntax(err)
	}
	switch tok {
	case json.Delim('['):
		s.kind = kindOriginal
	case json.Delim('{'):
		s.kind = kindOurs
		if err := s.readHeader(); err != nil {
			s.close()
			return nil, err
		}
	default:
		s.close()
		return nil, corruptAt(path, 0, "the file is neither a tokenledger file (a JSON object with \"format\": \"tokenledger\") nor the original service's JSON array of records")
	}
	return s, nil
}

// close closes the file.
func (s *usageReader) close() {
	if s.f != nil {
		s.f.Close()
	}
}

// syntax turns an error of dec.Token into a *CorruptError at the
// offending byte.
func (s *usageReader) syntax(err error) error {
	off := s.dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return corruptAt(s.path, s.size, "the file ends too early (it was cut short)")
	}
	return corruptAt(s.path, off, "%s", jsonReason(err))
}

// decode decodes the next value into v; a failure is a *CorruptError at
// the offending byte.
func (s *usageReader) decode(v any) error {
	before := s.dec.InputOffset()
	err := s.dec.Decode(v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return corruptAt(s.path, s.size, "the file ends too early (it was cut short)")
	case errors.As(err, &se):
		// A syntax error's offset from Decode counts the bytes of every
		// Decode so far, not the file's; find the byte again by
		// decoding the value alone.
		return corruptAt(s.path, syntaxOffset(s.path, before), "%s", jsonReason(err))
	}
	return corruptAt(s.path, before, "%s", jsonReason(err))
}

// syntaxOffset returns the offset of the byte that makes the JSON value
// starting at (or, after white space and a comma, just after) off in the
// file at path invalid. It returns off when it cannot tell.
func syntaxOffset(path string, off int64) int64 {
	f, err := os.Open(path)
	if err != nil {
		return off
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return off
	}
	br := bufio.NewReader(f)
	start, comma := off, false
	for {
		b, err := br.ReadByte()
		if err != nil {
			return off
		}
		if b == ',' && !comma {
			comma = true
		} else if b != ' ' && b != '\t' && b != '\n' && b != '\r' {
			_ = br.UnreadByte()
			break
		}
		start++
	}
	var raw json.RawMessage
	var se *json.SyntaxError
	if err := json.NewDecoder(br).Decode(&raw); errors.As(err, &se) && se.Offset > 0 {
		return start + se.Offset - 1
	}
	return off
}

// readHeader reads our header up to the "days" array (or the end of the
// object). "format" and "version" must come before "days". A field this
// version does not know is damage in a file of this version, but may be
// new in a later one: before "version" it is skipped and judged once the
// version is known, so that a newer file is reported as such (and left
// alone by Repair), not as corrupt.
func (s *usageReader) readHeader() error {
	var sawFormat, sawVersion bool
	var unknown error // the first unknown field before "version"
	seen := map[string]bool{}
	for s.dec.More() {
		keyOff := s.dec.InputOffset()
		tok, err := s.dec.Token()
		if err != nil {
			return s.syntax(err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return corruptAt(s.path, keyOff, "the field %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "format":
			var v string
			if err := s.decode(&v); err != nil {
				return err
			}
			if v != formatName {
				return corruptAt(s.path, keyOff, "\"format\" is %q, not %q", v, formatName)
			}
			sawFormat = true
		case "version":
			var v json.Number
			if err := s.decode(&v); err != nil {
				return err
			}
			if v.String() != strconv.Itoa(formatVersion) {
				return fmt.Errorf("%w: token usage file %s has format version %s, but this tokenledger reads only version %d; upgrade tokenledger or use another file",
					ErrUnknownVersion, s.path, v, formatVersion)
			}
			if unknown != nil {
				return unknown
			}
			sawVersion = true
		case "foldedJournal":
			var v json.Number
			if err := s.decode(&v); err != nil {
				return err
			}
			n, err := strconv.ParseUint(v.String(), 10, 64)
			if err != nil || n > maxJournalSeq {
				return corruptAt(s.path, keyOff, "\"foldedJournal\" must be a whole number from 0 to 2^63")
			}
			s.folded = n
		case "updatedAt", "retentionDays":
			var skip json.RawMessage // informational
			if err := s.decode(&skip); err != nil {
				return err
			}
		case "days":
			if !sawFormat || !sawVersion {
				return corruptAt(s.path, keyOff, "\"format\" and \"version\" must come before \"days\"")
			}
			tok, err := s.dec.Token()
			if err != nil {
				return s.syntax(err)
			}
			if tok != json.Delim('[') {
				return corruptAt(s.path, keyOff, "\"days\" must be an array")
			}
			s.inDays = true
			return nil
		default:
			err := corruptAt(s.path, keyOff, "unknown field %q", key)
			if sawVersion {
				return err
			}
			if unknown == nil {
				unknown = err
			}
			if err := s.skipValue(); err != nil {
				return err
			}
		}
	}
	if unknown != nil {
		return unknown
	}
	if !sawFormat {
		return corruptAt(s.path, 0, "the object has no \"format\": \"tokenledger\"; it is not a tokenledger file")
	}
	if !sawVersion {
		return corruptAt(s.path, 0, "the file has no \"version\"")
	}
	return nil
}

// maxSkipDepth bounds the nesting of a header value skipped unread.
const maxSkipDepth = 64

// skipValue reads past the next JSON value without keeping it.
func (s *usageReader) skipValue() error {
	depth := 0
	for {
		off := s.dec.InputOffset()
		tok, err := s.dec.Token()
		if err != nil {
			return s.syntax(err)
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			if depth++; depth > maxSkipDepth {
				return corruptAt(s.path, off, "a header value is nested more than %d levels deep", maxSkipDepth)
			}
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
