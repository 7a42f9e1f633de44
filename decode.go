package tokenledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxBatch is the largest number of events one request may carry.
const MaxBatch = 1000

// DecodeEvents parses a request body holding one event, a JSON array of
// events, or {"events": [...]}, and returns the normalised events in
// order, for Service.ValidateAndPrice to check against the contract's
// rules. Field names are matched exactly; unknown and repeated fields, and
// a value of the wrong type, are errors. The first one is returned as a
// *ValidationError (with Index set for a batch) and no events are returned.
func DecodeEvents(body []byte) ([]Event, error) {
	if !utf8.Valid(body) {
		return nil, &ValidationError{Index: -1, Msg: "the body is not valid UTF-8"}
	}
	if events, err, ok := decodeFast(body); ok {
		return events, err
	}
	return decodeSlow(body)
}

// decodeSlow is DecodeEvents on encoding/json's token API: every body,
// every error. body is valid UTF-8.
func decodeSlow(body []byte) ([]Event, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, &ValidationError{Index: -1, Msg: "the body is empty; send one event, an array of events or {\"events\": [...]}"}
		}
		return nil, syntaxError(err, -1)
	}
	var events []Event
	switch tok {
	case json.Delim('['):
		events, err = decodeArray(dec)
	case json.Delim('{'):
		var fields *fieldSet
		fields, err = readObject(dec, -1)
		if err != nil {
			return nil, err
		}
		if raw, ok := fields.only("events"); ok {
			inner := json.NewDecoder(bytes.NewReader(raw))
			inner.UseNumber()
			if t, err := inner.Token(); err != nil || t != json.Delim('[') {
				return nil, &ValidationError{Index: -1, Field: "events", Msg: "must be an array of events"}
			}
			events, err = decodeArray(inner)
		} else {
			var e Event
			e, err = eventFromFields(fields)
			e.alone = true
			events = []Event{e}
		}
	default:
		return nil, &ValidationError{Index: -1, Msg: "the body must be a JSON object or array of events"}
	}
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ValidationError{Index: -1, Msg: "the body holds more than one JSON value"}
	}
	return events, nil
}

// decodeArray reads the elements of an array whose '[' was consumed.
func decodeArray(dec *json.Decoder) ([]Event, error) {
	var events []Event
	for i := 0; dec.More(); i++ {
		if i >= MaxBatch {
			return nil, &ValidationError{Index: -1, Msg: fmt.Sprintf("a batch may hold at most %d events", MaxBatch)}
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err, i)
		}
		if tok != json.Delim('{') {
			return nil, &ValidationError{Index: i, Msg: "must be a JSON object"}
		}
		fields, err := readObject(dec, i)
		if err != nil {
			return nil, err
		}
		e, err := eventFromFields(fields)
		if err != nil {
			return nil, atIndex(err, i)
		}
		events = append(events, e)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, syntaxError(err, -1)
	}
	if len(events) == 0 {
		return nil, &ValidationError{Index: -1, Msg: "the batch holds no events"}
	}
	return events, nil
}

// readObject reads the members of an object whose '{' was consumed,
// rejecting repeated keys.
func readObject(dec *json.Decoder, index int) (*fieldSet, error) {
	fields := new(fieldSet)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err, index)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(err, index)
		}
		if !fields.add([]byte(key), raw) {
			if key == "" { // a bare message would not say which key
				return nil, &ValidationError{Index: index, Msg: `the empty key "" appears more than once`}
			}
			return nil, &ValidationError{Index: index, Field: key, Msg: "appears more than once"}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntaxError(err, index)
	}
	return fields, nil
}

// syntaxError turns a decoder error into a sentence.
func syntaxError(err error, index int) error {
	var se *json.SyntaxError
	msg := "the body is not valid JSON"
	if errors.As(err, &se) {
		msg = fmt.Sprintf("the body is not valid JSON (at byte %d: %s)", se.Offset, strings.TrimPrefix(se.Error(), "invalid character "))
	} else if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		msg = "the body is not valid JSON (it ends too early)"
	}
	return &ValidationError{Index: index, Msg: msg}
}

// eventFromFields builds an event from its wire fields: known fields
// only, each of its type; the contract's rules are ValidateAndPrice's.
func eventFromFields(f *fieldSet) (Event, error) {
	var e Event
	var unknown []string
	for _, m := range f.other {
		unknown = append(unknown, m.key)
	}
	if len(unknown) > 0 { // the same answer every time (firstUnknown)
		slices.Sort(unknown)
		if unknown[0] == "" { // without a field name the sentence must name it
			return e, invalid("", `the empty key "" is not a known field (see docs/api.md)`)
		}
		name := firstUnknown(unknown)
		return e, invalid(name, "%s", unknownFieldMsg(name))
	}
	var err error
	str := func(slot int, dst *string) {
		if err == nil {
			*dst, err = rawString(f, slot)
		}
	}
	str(fieldID, &e.ID)
	str(fieldModel, &e.Model)
	str(fieldProvider, &e.Provider)
	str(fieldUserID, &e.UserID)
	str(fieldSessionID, &e.SessionID)
	var ts, tokenType string
	str(fieldTimestamp, &ts)
	str(fieldTokenType, &tokenType)
	if err != nil {
		return e, err
	}
	// An empty string is not an absent field: "" is no id, no time and
	// no token type, and must not be taken for "assign one" or "now".
	sent := func(slot int) bool { _, ok := f.present(slot); return ok }
	switch {
	case e.ID == "" && sent(fieldID):
		return e, validateID("")
	case ts == "" && sent(fieldTimestamp):
		return e, invalid("timestamp", "must be an RFC 3339 time such as 2026-11-27T12:00:00Z, not an empty string; leave it out for now")
	case tokenType == "" && sent(fieldTokenType):
		return e, invalid("tokenType", "must be prompt, completion or total, not an empty string")
	}
	if ts != "" {
		t, terr := parseTimestamp(ts)
		if terr != nil {
			return e, terr
		}
		e.SetTimestamp(t)
	}
	e.Model = strings.TrimSpace(e.Model)

	num := func(slot int, dst *int64) bool {
		if err != nil {
			return false
		}
		var ok bool
		*dst, ok, err = rawInt(f, slot)
		return ok
	}
	var tokensUsed int64
	hasUsed := num(fieldTokensUsed, &tokensUsed)
	split := [...]struct {
		slot int
		dst  *int64
	}{
		{fieldPromptTokens, &e.PromptTokens}, {fieldCompletionTokens, &e.CompletionTokens},
		{fieldCacheReadTokens, &e.CacheReadTokens}, {fieldCacheWriteTokens, &e.CacheWriteTokens},
		{fieldReasoningTokens, &e.ReasoningTokens},
	}
	var splitField string
	for _, s := range split {
		if num(s.slot, s.dst) && splitField == "" {
			splitField = fieldNames[s.slot]
		}
	}
	hasTotal := num(fieldTotalTokens, &e.TotalTokens)
	if err != nil {
		return e, err
	}
	switch {
	case hasUsed:
		if hasTotal {
			splitField = "totalTokens"
		}
		if splitField != "" {
			return e, invalid("tokensUsed", "cannot be combined with %s; use one form or the other", splitField)
		}
		switch tokenType {
		case "prompt":
			e.PromptTokens, e.TotalTokens = tokensUsed, tokensUsed
		case "completion":
			e.CompletionTokens, e.TotalTokens = tokensUsed, tokensUsed
		case "total":
			e.TotalTokens = tokensUsed
		case "":
			return e, invalid("tokenType", "is required with tokensUsed (prompt, completion or total)")
		default:
			return e, invalid("tokenType", "must be prompt, completion or total")
		}
	case tokenType != "":
		return e, invalid("tokenType", "is only allowed together with tokensUsed")
	case !hasTotal:
		e.TotalTokens = e.PromptTokens + e.CompletionTokens
	}

	if raw, ok := f.present(fieldCostUsd); ok {
		if c := raw[0]; c != '-' && (c < '0' || c > '9') {
			return e, invalid("costUsd", "must be a non-negative decimal number of US dollars")
		}
		cost, cerr := ParseDollars(string(raw))
		if cerr != nil {
			return e, invalid("costUsd", "%s", cerr.Error())
		}
		e.Cost, e.Pricing = cost, PricedByClient
	}
	if raw, ok := f.present(fieldMetadata); ok {
		if raw[0] != '{' {
			return e, invalid("metadata", "must be a JSON object")
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return e, invalid("metadata", "must be a JSON object")
		}
		e.Metadata = compact.Bytes()
	}
	return e, nil
}

// ParseTimestamp parses s as the API's timestamp field: a strict RFC 3339
// time. Its error is a *ValidationError for the field "timestamp".
func ParseTimestamp(s string) (time.Time, error) { return parseTimestamp(s) }

// SetTimestamp sets e's time to t (in UTC) as a caller-given time: even
// the zero time is then checked by Service.ValidateAndPrice like any other, not
// taken for "no timestamp" and replaced by now.
func (e *Event) SetTimestamp(t time.Time) {
	e.Timestamp = t.UTC()
	e.zeroTimeSent = e.Timestamp.IsZero()
}

// parseTimestamp parses an RFC 3339 time. time.Parse alone is too lenient
// for that: it takes a one-digit hour, a comma before the fraction and
// offsets such as +24:00 or +00:60. So the layout is checked here byte by
// byte, and time.Parse is left to check the ranges of the date and the
// time of day. RFC 3339 allows "t" and "z" for "T" and "Z" (its section
// 5.6), which time.Parse does not: they are taken and upper-cased first.
func parseTimestamp(s string) (time.Time, error) {
	// bad builds the usual error only when needed: this runs for every
	// event, and most timestamps are fine.
	bad := func() error { return invalid("timestamp", "must be an RFC 3339 time such as 2026-11-27T12:00:00Z") }
	digits := func(from, to int) bool {
		if to > len(s) {
			return false
		}
		for i := from; i < to; i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	at := func(i int, c byte) bool { return i < len(s) && s[i] == c }
	if !digits(0, 4) || !at(4, '-') || !digits(5, 7) || !at(7, '-') || !digits(8, 10) || !(at(10, 'T') || at(10, 't')) ||
		!digits(11, 13) || !at(13, ':') || !digits(14, 16) || !at(16, ':') || !digits(17, 19) {
		return time.Time{}, bad()
	}
	i := 19
	if at(i, ',') {
		return time.Time{}, invalid("timestamp", "must write fractional seconds after a \".\", not a \",\" (2026-11-27T12:00:00.5Z)")
	}
	if at(i, '.') {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 20 {
			return time.Time{}, bad()
		}
	}
	zone := s[i:]
	if zone != "Z" && zone != "z" {
		if len(zone) != 6 || (zone[0] != '+' && zone[0] != '-') || !digits(i+1, i+3) || zone[3] != ':' || !digits(i+4, i+6) {
			return time.Time{}, bad()
		}
		if zone[1:3] > "23" || zone[4:6] > "59" {
			return time.Time{}, invalid("timestamp", "has the UTC offset %q; an offset runs from -23:59 to +23:59, with minutes below 60", zone)
		}
	}
	if s[10] == 't' || zone == "z" {
		b := []byte(s)
		b[10] = 'T'
		if zone == "z" {
			b[len(b)-1] = 'Z'
		}
		s = string(b)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad()
	}
	return t, nil
}

// rawString decodes the optional string field in slot; null counts as
// absent.
func rawString(f *fieldSet, slot int) (string, error) {
	name := fieldNames[slot]
	raw, ok := f.present(slot)
	if !ok {
		return "", nil
	}
	if raw[0] != '"' {
		return "", invalid(name, "must be a string")
	}
	if plain(raw) { // the common case: nothing to unescape
		return string(raw[1 : len(raw)-1]), nil
	}
	if esc, ok := loneSurrogate(raw); ok {
		return "", invalid(name, `holds "%s", a lone UTF-16 surrogate, which is not a character`, esc)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", invalid(name, "must be a string")
	}
	return s, nil
}

// plain reports whether raw is a quoted JSON string without escapes or
// control characters, whose content is then raw without its quotes (the
// body is valid UTF-8).
func plain(raw []byte) bool {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c == '"' || c < 0x20 {
			return false
		}
	}
	return true
}

// loneSurrogate returns the first \u escape in raw, a quoted JSON string,
// that is half of a UTF-16 surrogate pair without its other half: a high
// surrogate (\uD800–\uDBFF) not followed at once by an escaped low one
// (\uDC00–\uDFFF), or a low one without a high one before it.
// encoding/json turns such an escape into U+FFFD, so that different
// strings ("\ud800", "\udfff") would become the same one. Only the
// escapes are looked at: a string without a backslash has none.
func loneSurrogate(raw []byte) (string, bool) {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return "", false
		}
		i += j
		r, ok := hexEscape(raw, i)
		if !ok { // another escape, such as \\ or \n
			i += 2
			continue
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00: // high
			if lo, ok := hexEscape(raw, i+6); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				i += 12 // a whole pair: one character
				continue
			}
			return string(raw[i : i+6]), true
		case utf16.IsSurrogate(r): // low, without a high one before it
			return string(raw[i : i+6]), true
		}
		i += 6
	}
	return "", false
}

// hexEscape returns the code unit of the \uXXXX escape at raw[i:].
func hexEscape(raw []byte, i int) (rune, bool) {
	if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// rawInt decodes the optional token count in slot; null counts as absent.
func rawInt(f *fieldSet, slot int) (int64, bool, error) {
	name := fieldNames[slot]
	raw, ok := f.present(slot)
	if !ok {
		return 0, false, nil
	}
	// Digits only, no leading zero, at most 16 of them: the sum fits an
	// int64, and the error is built only when it is needed.
	var n int64
	ok = len(raw) <= 16 && (len(raw) == 1 || raw[0] != '0')
	for _, c := range raw {
		if c < '0' || c > '9' {
			ok = false
			break
		}
		n = n*10 + int64(c-'0')
	}
	if !ok || n > MaxTokens {
		return 0, false, invalid(name, "must be an integer from 0 to %d", int64(MaxTokens))
	}
	return n, true, nil
}
