package tokenledger

import (
	"errors"
	"strings"
	"testing"
)

// TestTimestampMustBeStrictRFC3339 covers forms time.Parse takes but RFC
// 3339 does not allow. Both decoders must refuse them with the same
// sentence, and still take every correct form.
func TestTimestampMustBeStrictRFC3339(t *testing.T) {
	for _, c := range []struct{ ts, want string }{
		{"2026-11-27T12:00:00+00:60", `timestamp has the UTC offset "+00:60"`},
		{"2026-11-27T12:00:00+24:00", `timestamp has the UTC offset "+24:00"`},
		{"2026-11-27T12:00:00-24:00", `timestamp has the UTC offset "-24:00"`},
		{"2026-11-27T12:00:00,5Z", `timestamp must write fractional seconds after a "."`},
		{"2026-11-27T1:00:00Z", "timestamp must be an RFC 3339 time"},
		{"2026-11-27T12:00:00", "timestamp must be an RFC 3339 time"},
		{"2026-11-27T12:00:00.Z", "timestamp must be an RFC 3339 time"},
		{"2026-11-27T12:00:00+0100", "timestamp must be an RFC 3339 time"},
		{"2026-11-27T12:00:00Z ", "timestamp must be an RFC 3339 time"},
		{"2026-11-27T24:00:00Z", "timestamp must be an RFC 3339 time"},
	} {
		for _, body := range []string{
			`{"model":"m","timestamp":"` + c.ts + `"}`,
			`[{"model":"m"},{"model":"m","timestamp":"` + c.ts + `"}]`,
		} {
			checkSamePaths(t, []byte(body))
			ev, err := DecodeEvents([]byte(body))
			if err == nil {
				t.Errorf("%s: accepted as %v", body, ev[len(ev)-1].Timestamp)
			} else if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %q, want it to contain %q", body, err, c.want)
			}
		}
	}
	for _, ts := range []string{
		"2026-11-27T12:00:00Z", "2026-11-27T12:00:00.5Z", "2026-11-27T12:00:00.123456789+23:59",
		"2026-11-27T12:00:00-23:59", "2026-11-27T12:00:00-00:00", "2026-11-27T12:00:00.000+01:00",
		// RFC 3339 5.6: "T" and "Z" may be written in lower case.
		"2026-11-27t12:00:00z", "2026-11-27t12:00:00.5+01:00", "2026-11-27T12:00:00z",
	} {
		body := []byte(`{"model":"m","timestamp":"` + ts + `"}`)
		checkSamePaths(t, body)
		if _, err := DecodeEvents(body); err != nil {
			t.Errorf("%s: %v", ts, err)
		}
	}
	// The lower-case forms name the same instant as the upper-case ones.
	for lower, upper := range map[string]string{
		"2026-11-27t12:00:00z":        "2026-11-27T12:00:00Z",
		"2026-11-27t12:00:00.5+01:00": "2026-11-27T12:00:00.5+01:00",
	} {
		a, aerr := ParseTimestamp(lower)
		b, berr := ParseTimestamp(upper)
		if aerr != nil || berr != nil || !a.Equal(b) {
			t.Errorf("%s = %v (%v), %s = %v (%v): want the same instant", lower, a, aerr, upper, b, berr)
		}
	}
}

// TestEmptyKeyIsNamed: a field error whose field is the empty key has no
// name to put in front of its sentence, so the sentence itself must say
// which key it is about.
func TestEmptyKeyIsNamed(t *testing.T) {
	for body, want := range map[string]string{
		`{"":1,"model":"m"}`:          `the empty key "" is not a known field (see docs/api.md)`,
		`[{"model":"m","":1}]`:        `event 0: the empty key "" is not a known field (see docs/api.md)`,
		`{"":1,"":2,"model":"m"}`:     `the empty key "" appears more than once`,
		`[{"model":"m"},{"":1,"":2}]`: `event 1: the empty key "" appears more than once`,
	} {
		checkSamePaths(t, []byte(body))
		if _, err := DecodeEvents([]byte(body)); err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %q", body, err, want)
		}
	}
}

// TestNegativeZeroCostIsZero: both decoders take a cost of -0.0 (what
// Python's json.dumps writes for a negative zero) as zero, and still
// refuse every cost below zero.
func TestNegativeZeroCostIsZero(t *testing.T) {
	for _, c := range []string{"-0", "-0.0", "-0e3"} {
		body := []byte(`{"model":"m","costUsd":` + c + `}`)
		checkSamePaths(t, body)
		ev, err := DecodeEvents(body)
		if err != nil || ev[0].Cost != 0 {
			t.Errorf("%s: %+v, %v; want a cost of 0", body, ev, err)
		}
	}
	body := []byte(`{"model":"m","costUsd":-0.000000001}`)
	checkSamePaths(t, body)
	if _, err := DecodeEvents(body); err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Errorf("%s: error %v, want it refused as negative", body, err)
	}
}

// TestLoneSurrogateIsRefused: encoding/json turns a \u escape of half a
// UTF-16 surrogate pair into U+FFFD, so two different ids or users would
// count as one "�". Every string field refuses it, naming the field and
// the escape as sent; a real U+FFFD and a whole surrogate pair are
// characters and pass. Both decoders answer alike.
func TestLoneSurrogateIsRefused(t *testing.T) {
	refused := []struct{ body, want string }{
		{`{"model":"m","userId":"\ud800"}`, `userId holds "\ud800", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","userId":"\udfff"}`, `userId holds "\udfff", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","sessionId":"s-\uDBFF"}`, `sessionId holds "\uDBFF", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m\ud800x"}`, `model holds "\ud800", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","provider":"\ud800\u0041"}`, `provider holds "\ud800", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","provider":"\ud800\ud800\udc00"}`, `provider holds "\ud800", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","userId":"\ud83d\ude00\ude00"}`, `userId holds "\ude00", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","userId":"\\\udc00"}`, `userId holds "\udc00", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","id":"a\ud800"}`, `id holds "\ud800", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","tokensUsed":1,"tokenType":"\ud800"}`, `tokenType holds "\ud800", a lone UTF-16 surrogate, which is not a character`},
		{`{"model":"m","timestamp":"\udc00"}`, `timestamp holds "\udc00", a lone UTF-16 surrogate, which is not a character`},
		{`[{"model":"m","userId":"u"},{"model":"m","userId":"\ud800"}]`, `event 1: userId holds "\ud800", a lone UTF-16 surrogate, which is not a character`},
		{`{"events":[{"model":"m","userId":"\udfff"}]}`, `event 0: userId holds "\udfff", a lone UTF-16 surrogate, which is not a character`},
	}
	for _, tc := range refused {
		checkSamePaths(t, []byte(tc.body))
		ev, err := DecodeEvents([]byte(tc.body))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %+v, %v; want %q", tc.body, ev, err, tc.want)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v does not match ErrInvalid", tc.body, err)
		}
	}

	accepted := []struct{ body, userID string }{
		{`{"model":"m","userId":"\ufffd"}`, "\ufffd"},
		{"{\"model\":\"m\",\"userId\":\"\ufffd\"}", "\ufffd"}, // sent raw
		{`{"model":"m","userId":"\ud83d\ude00"}`, "😀"},
		{`{"model":"m","userId":"\uD83D\uDE00!"}`, "😀!"},
		{`{"model":"m","userId":"\udbff\udfff"}`, "\U0010FFFF"},
		{`{"model":"m","userId":"\\ud800"}`, `\ud800`}, // an escaped backslash, then text
		{`{"model":"m","userId":"\u00e9\"\ud7ff\ue000"}`, "é\"\ud7ff\ue000"},
	}
	for _, tc := range accepted {
		checkSamePaths(t, []byte(tc.body))
		ev, err := DecodeEvents([]byte(tc.body))
		if err != nil || ev[0].UserID != tc.userID {
			t.Errorf("%s: %+v, %v; want userId %q", tc.body, ev, err, tc.userID)
		}
	}
}
