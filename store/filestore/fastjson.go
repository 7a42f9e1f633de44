package filestore

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// A fast path for reading events back. encoding/json spends most of a
// start-up (and of a compaction) on reflection; the events this package
// writes are flat objects of plain strings and integers, which parseEvent
// reads directly. Anything it does not handle exactly as encoding/json
// would — an escape in a string, a key that is not one of the event's
// fields, null, a fraction in an integer field, a nested value — makes it
// give up, and the caller decodes the same bytes with encoding/json, which
// then also says what is wrong.

// isSpace reports JSON white space.
func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// plainString reads a JSON string without escapes at b[i] (which must be
// '"') and returns its contents and the index after the closing quote.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			if !utf8.Valid(s) {
				return nil, 0, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainNumber reads a JSON number at b[i] and returns its text and the
// index after it. It accepts only what JSON's grammar allows.
func plainNumber(b []byte, i int) ([]byte, int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	start := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == start || (b[start] == '0' && j-start > 1) {
		return nil, 0, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		f := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == f {
			return nil, 0, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		e := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == e {
			return nil, 0, false
		}
	}
	return b[i:j], j, true
}

// parseEvent reads one event object starting at b[i] (after optional
// white space) and returns the index after it. ok is false when the fast
// path gives up (see above); w is then meaningless.
func parseEvent(b []byte, i int, w *storedEvent) (end int, ok bool) {
	*w = storedEvent{}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return 0, false
		}
		j = skipSpace(b, j)
		if j >= len(b) || b[j] != ':' {
			return 0, false
		}
		j = skipSpace(b, j+1)
		if j >= len(b) {
			return 0, false
		}
		var str *string
		var num *int64
		switch string(key) {
		case "id":
			str = &w.ID
		case "model":
			str = &w.Model
		case "provider":
			str = &w.Provider
		case "userId":
			str = &w.UserID
		case "sessionId":
			str = &w.SessionID
		case "pricing":
			str = &w.Pricing
		case "promptTokens":
			num = &w.PromptTokens
		case "completionTokens":
			num = &w.CompletionTokens
		case "cacheReadTokens":
			num = &w.CacheReadTokens
		case "cacheWriteTokens":
			num = &w.CacheWriteTokens
		case "reasoningTokens":
			num = &w.ReasoningTokens
		case "totalTokens":
			num = &w.TotalTokens
		case "timestamp", "costUsd":
		default:
			return 0, false
		}
		switch {
		case str != nil:
			v, k, ok := plainString(b, j)
			if !ok {
				return 0, false
			}
			*str, j = string(v), k
		case num != nil:
			v, k, ok := plainNumber(b, j)
			if !ok {
				return 0, false
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil { // a fraction, an exponent or out of range
				return 0, false
			}
			*num, j = n, k
		case string(key) == "timestamp":
			_, k, ok := plainString(b, j)
			if !ok || w.Timestamp.UnmarshalJSON(b[j:k]) != nil {
				return 0, false
			}
			j = k
		default: // costUsd
			v, k, ok := plainNumber(b, j)
			if !ok {
				return 0, false
			}
			w.Cost, j = json.Number(v), k
		}
		j = skipSpace(b, j)
		if j >= len(b) {
			return 0, false
		}
		switch b[j] {
		case ',':
			i = skipSpace(b, j+1)
		case '}':
			return j + 1, true
		default:
			return 0, false
		}
	}
}

// parseEventArray reads a journal payload, a JSON array of events, with
// the fast path; ok is false when it gives up.
func parseEventArray(b []byte) ([]storedEvent, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	out := make([]storedEvent, 0, bytes.Count(b, []byte(`{"id"`)))
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, skipSpace(b, i+1) == len(b)
	}
	for {
		var w storedEvent
		j, ok := parseEvent(b, i, &w)
		if !ok {
			return nil, false
		}
		out = append(out, w)
		j = skipSpace(b, j)
		if j >= len(b) {
			return nil, false
		}
		switch b[j] {
		case ',':
			i = j + 1
		case ']':
			return out, skipSpace(b, j+1) == len(b)
		default:
			return nil, false
		}
	}
}
