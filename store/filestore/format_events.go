package filestore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tokenledger/tokenledger"
)

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
