package filestore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/tokenledger/tokenledger"
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

// eachDay reads the days of our format, calling fn once per day with all
// its events, in date order. It holds one day's events at a time. It
// checks that days are in ascending order, each once, that every event is
// valid and carries an id and a timestamp on that day, and that nothing
// follows the object.
func (s *usageReader) eachDay(fn func(date tokenledger.Date, evs []tokenledger.Event) error) error {
	if s.inDays {
		var prev tokenledger.Date
		for s.dec.More() {
			date, evs, err := s.readDay()
			if err != nil {
				return err
			}
			if prev != "" && date <= prev {
				return corruptAt(s.path, s.dec.InputOffset(), "day %s comes after %s; days must be in ascending date order, each date once", date, prev)
			}
			prev = date
			if err := fn(date, evs); err != nil {
				return err
			}
		}
		if _, err := s.dec.Token(); err != nil { // ']'
			return s.syntax(err)
		}
		s.inDays = false
		// Only informational fields may follow "days".
		for s.dec.More() {
			keyOff := s.dec.InputOffset()
			tok, err := s.dec.Token()
			if err != nil {
				return s.syntax(err)
			}
			switch key, _ := tok.(string); key {
			case "updatedAt", "retentionDays":
				var skip json.RawMessage
				if err := s.decode(&skip); err != nil {
					return err
				}
			default:
				return corruptAt(s.path, keyOff, "field %q must come before \"days\" or is unknown", key)
			}
		}
	}
	if _, err := s.dec.Token(); err != nil { // '}'
		return s.syntax(err)
	}
	return s.expectEOF()
}

// expectEOF checks that only white space follows the top-level value.
func (s *usageReader) expectEOF() error {
	off := s.dec.InputOffset()
	if _, err := s.dec.Token(); err != io.EOF {
		return corruptAt(s.path, off, "something follows the end of the JSON value")
	}
	return nil
}

// readDay reads one element of "days".
func (s *usageReader) readDay() (tokenledger.Date, []tokenledger.Event, error) {
	dayOff := s.dec.InputOffset()
	tok, err := s.dec.Token()
	if err != nil {
		return "", nil, s.syntax(err)
	}
	if tok != json.Delim('{') {
		return "", nil, corruptAt(s.path, dayOff, "each element of \"days\" must be an object")
	}
	var date tokenledger.Date
	var evs []tokenledger.Event
	var sawEvents bool
	seen := map[string]bool{}
	for s.dec.More() {
		keyOff := s.dec.InputOffset()
		tok, err := s.dec.Token()
		if err != nil {
			return "", nil, s.syntax(err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return "", nil, corruptAt(s.path, keyOff, "the field %q appears twice in a day", key)
		}
		seen[key] = true
		switch key {
		case "date":
			var v string
			if err := s.decode(&v); err != nil {
				return "", nil, err
			}
			d, err := tokenledger.ParseDate(v)
			if err != nil {
				return "", nil, corruptAt(s.path, keyOff, "%v", err)
			}
			date = d
		case "summary":
			var skip json.RawMessage // informational; recomputed from the events
			if err := s.decode(&skip); err != nil {
				return "", nil, err
			}
		case "events":
			if date == "" {
				return "", nil, corruptAt(s.path, keyOff, "a day's \"date\" must come before its \"events\"")
			}
			if tok, err := s.dec.Token(); err != nil {
				return "", nil, s.syntax(err)
			} else if tok != json.Delim('[') {
				return "", nil, corruptAt(s.path, keyOff, "\"events\" must be an array")
			}
			for s.dec.More() {
				evOff := s.dec.InputOffset()
				var raw json.RawMessage
				if err := s.decode(&raw); err != nil {
					return "", nil, err
				}
				var w storedEvent
				if end, ok := parseEvent(raw, 0, &w); !ok || skipSpace(raw, end) != len(raw) {
					dec := json.NewDecoder(bytes.NewReader(raw))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&w); err != nil {
						return "", nil, corruptAt(s.path, evOff, "%s", jsonReason(err))
					}
				}
				e, reason := w.event()
				if reason != "" {
					return "", nil, corruptAt(s.path, evOff, "%s", reason)
				}
				if e.Day() != date {
					return "", nil, corruptAt(s.path, evOff, "event %q has a timestamp on %s but is listed under %s", e.ID, e.Day(), date)
				}
				evs = append(evs, e)
			}
			if _, err := s.dec.Token(); err != nil { // ']'
				return "", nil, s.syntax(err)
			}
			sawEvents = true
		default:
			return "", nil, corruptAt(s.path, keyOff, "unknown field %q in a day", key)
		}
	}
	if _, err := s.dec.Token(); err != nil { // '}'
		return "", nil, s.syntax(err)
	}
	if date == "" {
		return "", nil, corruptAt(s.path, dayOff, "a day has no \"date\"")
	}
	if !sawEvents {
		return "", nil, corruptAt(s.path, dayOff, "day %s has no \"events\"", date)
	}
	return date, evs, nil
}

// eachRecord reads the original service's array, calling fn for every
// record with its index and either the converted event or the reason it
// is invalid.
func (s *usageReader) eachRecord(fn func(index int, e *tokenledger.Event, id, reason string) error) error {
	for i := 0; s.dec.More(); i++ {
		var raw json.RawMessage
		if err := s.decode(&raw); err != nil {
			return err
		}
		e, id, reason := originalEvent(raw)
		if err := fn(i, &e, id, reason); err != nil {
			return err
		}
	}
	if _, err := s.dec.Token(); err != nil { // ']'
		return s.syntax(err)
	}
	return s.expectEOF()
}

// originalEvent converts one record of the original service's file:
// {id, date, timestamp, userId, sessionId, model, tokensUsed, tokenType,
// metadata}. Apart from "date" and "metadata" such a record is an event in
// the API's tokensUsed + tokenType form, so it is decoded and validated by
// tokenledger.DecodeEvents, with the API's rules; "id" and "timestamp" are
// required here. The day is the timestamp's UTC date ("date" is not
// used); metadata is never stored, so it is not looked at. It returns the
// event, the record's id (for the log, "" when it has none) and the reason
// the record is invalid ("" when it is valid).
func originalEvent(raw json.RawMessage) (tokenledger.Event, string, string) {
	var f map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &f) != nil {
		return tokenledger.Event{}, "", "the record is not a JSON object"
	}
	var id string
	if v, ok := f["id"]; ok && json.Unmarshal(v, &id) != nil {
		id = ""
	}
	// The map keeps a repeated field's last value; the API refuses a
	// record with one, and so does the conversion.
	if k, ok := repeatedKey(raw); ok {
		return tokenledger.Event{}, id, fmt.Sprintf("%q appears more than once", k)
	}
	for _, name := range []string{"id", "timestamp"} {
		if v, ok := f[name]; !ok || string(v) == "null" || string(v) == `""` {
			return tokenledger.Event{}, id, name + " is missing"
		}
	}
	delete(f, "date")
	delete(f, "metadata")
	body, err := json.Marshal(f)
	if err != nil {
		return tokenledger.Event{}, id, "the record cannot be read"
	}
	evs, err := tokenledger.DecodeEvents(body)
	if err != nil {
		return tokenledger.Event{}, id, err.Error()
	}
	e := evs[0]
	if err := tokenledger.CheckStored(&e); err != nil {
		return e, id, err.Error()
	}
	return e, id, ""
}

// repeatedKey returns a key that appears more than once at the top level
// of obj, a valid JSON object, and whether there is one.
func repeatedKey(obj []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // '{'
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		k, _ := t.(string)
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// snapWriter writes our format, one day at a time, one event per line.
type snapWriter struct {
	w      *bufio.Writer
	days   int
	events int
	buf    []byte
}

// begin writes the header.
func (w *snapWriter) begin(updatedAt time.Time, retentionDays int, folded uint64) error {
	_, err := fmt.Fprintf(w.w, "{\n  \"format\": %q,\n  \"version\": %d,\n  \"updatedAt\": %q,\n  \"retentionDays\": %d,\n  \"foldedJournal\": %d,\n  \"days\": [",
		formatName, formatVersion, updatedAt.UTC().Format(time.RFC3339), retentionDays, folded)
	return err
}

// summary is the informational per-day block: the Day without its date.
type summary struct {
	TotalTokens      int64                         `json:"totalTokens"`
	CompletionTokens int64                         `json:"completionTokens"`
	PromptTokens     int64                         `json:"promptTokens"`
	RequestCount     int64                         `json:"requestCount"`
	UniqueUsers      int64                         `json:"uniqueUsers"`
	UniqueSessions   int64                         `json:"uniqueSessions"`
	CacheReadTokens  int64                         `json:"cacheReadTokens"`
	CacheWriteTokens int64                         `json:"cacheWriteTokens"`
	ReasoningTokens  int64                         `json:"reasoningTokens"`
	Cost             tokenledger.Nanos             `json:"costUsd"`
	Models           map[string]tokenledger.Totals `json:"models"`
}

// day writes one day with its summary and events. evs must be non-empty,
// all on date, with distinct ids.
func (w *snapWriter) day(date tokenledger.Date, evs []tokenledger.Event) error {
	d := tokenledger.EmptyDay(date)
	users := map[string]struct{}{}
	sessions := map[string]struct{}{}
	for i := range evs {
		d.AddCounters(&evs[i])
		if evs[i].UserID != "" {
			users[evs[i].UserID] = struct{}{}
		}
		if evs[i].SessionID != "" {
			sessions[evs[i].SessionID] = struct{}{}
		}
	}
	sum, err := json.Marshal(summary{
		TotalTokens: d.TotalTokens, CompletionTokens: d.CompletionTokens, PromptTokens: d.PromptTokens,
		RequestCount: d.RequestCount, UniqueUsers: int64(len(users)), UniqueSessions: int64(len(sessions)),
		CacheReadTokens: d.CacheReadTokens, CacheWriteTokens: d.CacheWriteTokens, ReasoningTokens: d.ReasoningTokens,
		Cost: d.Cost, Models: d.Models,
	})
	if err != nil {
		return fmt.Errorf("encode summary of %s: %w", date, err)
	}
	sep := ""
	if w.days > 0 {
		sep = ","
	}
	w.days++
	if _, err := fmt.Fprintf(w.w, "%s\n    {\n      \"date\": %q,\n      \"summary\": %s,\n      \"events\": [", sep, date, sum); err != nil {
		return err
	}
	for i := range evs {
		b := w.buf[:0]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n        "...)
		b = appendEvent(b, &evs[i])
		w.buf = b
		if _, err := w.w.Write(b); err != nil {
			return err
		}
	}
	w.events += len(evs)
	_, err = w.w.WriteString("\n      ]\n    }")
	return err
}

// end closes the days array and the object.
func (w *snapWriter) end() error {
	s := "\n  ]\n}\n"
	if w.days == 0 {
		s = "]\n}\n"
	}
	_, err := w.w.WriteString(s)
	return err
}
