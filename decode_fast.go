package tokenledger

import (
	"bytes"
	"encoding/json"
)

// decodeFast is DecodeEvents's fast path for the bodies clients send
// every time: one event object, an array of them or {"events": [...]},
// with keys and strings without escapes, and nothing but whitespace after
// the value. It splits the body into each event's fields with a small
// scanner instead of encoding/json's token API (which allocates a syntax
// error for the end of every value it reads) and then builds the events
// with the same eventFromFields as the slow path.
//
// It only ever answers for bodies it fully understands: ok is false for
// anything else — an escape, a duplicate key, a syntax error anywhere,
// an element that is not an object, an empty or oversized batch — and
// DecodeEvents then runs the slow path, which produces the error. So both
// paths return the same events and the same errors (FuzzDecodeFast).
func decodeFast(body []byte) (events []Event, err error, ok bool) {
	s := scanner{b: body}
	s.space()
	switch s.peek() {
	case '[':
		events, err, ok = s.eventArray()
	case '{':
		var fields fieldSet
		if ok = s.object(&fields, true); !ok {
			return nil, nil, false
		}
		if raw, has := fields.only("events"); has {
			inner := scanner{b: raw}
			if inner.peek() != '[' {
				return nil, nil, false
			}
			if events, err, ok = inner.eventArray(); !ok || !inner.end() {
				return nil, nil, false
			}
		} else {
			var e Event
			if e, err = eventFromFields(&fields); err == nil {
				e.alone = true
				events = []Event{e}
			}
		}
	default:
		return nil, nil, false
	}
	if !ok || !s.end() {
		return nil, nil, false
	}
	if err != nil {
		return nil, err, true
	}
	return events, nil, true
}

// scanner reads JSON from b at i.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// eventArray reads an array of 1 to MaxBatch event objects. err is the
// first event's validation error (with its index); the whole array is
// read even after one, so ok means the body is well formed. Each object
// is made an event as soon as it is read, into one reused fieldSet.
func (s *scanner) eventArray() (events []Event, err error, ok bool) {
	s.i++ // '['
	s.space()
	if s.peek() == ']' {
		return nil, nil, false // empty: the slow path words the error
	}
	// About 100 bytes an event at the least, for the capacity only.
	events = make([]Event, 0, min(MaxBatch, len(s.b)/100+1))
	var fields fieldSet
	for n := 0; ; n++ {
		s.space()
		if s.peek() != '{' || n == MaxBatch {
			return nil, nil, false
		}
		fields.reset()
		if !s.object(&fields, false) {
			return nil, nil, false
		}
		if err == nil {
			var e Event
			if e, err = eventFromFields(&fields); err != nil {
				err = atIndex(err, n)
			} else {
				events = append(events, e)
			}
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case ']':
			s.i++
		default:
			return nil, nil, false
		}
		break
	}
	if err != nil {
		return nil, err, true
	}
	return events, nil, true
}

// object reads an object of unique, unescaped keys into fields. Values
// are strings without escapes, numbers and literals; nested objects and
// arrays only when nested is true or the key is "metadata".
func (s *scanner) object(fields *fieldSet, nested bool) bool {
	s.i++ // '{'
	s.space()
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		s.space()
		key, ok := s.str()
		if !ok {
			return false
		}
		k := key[1 : len(key)-1]
		s.space()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.space()
		var v []byte
		switch c := s.peek(); {
		case c == '"':
			v, ok = s.str()
		case c == '{' || c == '[':
			if !nested && string(k) != "metadata" {
				return false
			}
			v, ok = s.composite()
		case c == 't':
			v, ok = s.literal("true")
		case c == 'f':
			v, ok = s.literal("false")
		case c == 'n':
			v, ok = s.literal("null")
		default:
			v, ok = s.number()
		}
		if !ok || !fields.add(k, v) {
			return false
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
			return true
		}
		return false
	}
}

// str reads a string without escapes or control characters, quotes
// included.
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:s.i], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

func (s *scanner) literal(lit string) ([]byte, bool) {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return nil, false
	}
	start := s.i
	s.i += len(lit)
	return s.b[start:s.i], true
}

// number reads a number by JSON's grammar.
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		digits()
	default:
		return nil, false
	}
	if s.peek() == '.' {
		s.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// composite reads a nested object or array (metadata), checked with
// json.Valid.
func (s *scanner) composite() ([]byte, bool) {
	start, depth := s.i, 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			for s.i < len(s.b) && s.b[s.i] != '"' {
				if s.b[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				raw := s.b[start:s.i]
				return raw, json.Valid(raw)
			}
		}
		s.i++
	}
	return nil, false
}
