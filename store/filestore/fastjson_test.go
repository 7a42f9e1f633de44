package filestore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tokenledger/tokenledger"
)

// fastCases are event objects the fast path must read exactly as
// encoding/json does, or leave to it.
var fastCases = []string{
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","promptTokens":1,"completionTokens":2,"totalTokens":3}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00.123456789Z","model":"ünï €","provider":"p","userId":"u","sessionId":"s","promptTokens":10,"completionTokens":2,"cacheReadTokens":1,"cacheWriteTokens":2,"reasoningTokens":1,"totalTokens":12,"costUsd":0.0015}`,
	` { "id" : "a" , "timestamp" : "2026-11-27T12:00:00+02:00" , "model" : "m" , "totalTokens" : 0 } `,
	`{"id":"a\"b","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":0}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":1.0}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":1e2}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":-3}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":01}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":99999999999999999999}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":null,"totalTokens":1}`,
	`{"id":"a","timestamp":"2026-11-27 12:00:00","model":"m","totalTokens":1}`,
	`{"id":"a","timestamp":"2026-11-27T24:00:00Z","model":"m","totalTokens":1}`,
	`{"ID":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":1}`,
	`{"id":"a","id":"b","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":1}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":1,"metadata":{"x":1}}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","totalTokens":1,"extra":1}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","costUsd":"0.1"}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m","costUsd":1E-3}`,
	`{"id":"a","timestamp":"2026-11-27T12:00:00Z","model":"m\u0001"}`,
	"{\"id\":\"a\",\"timestamp\":\"2026-11-27T12:00:00Z\",\"model\":\"\xff\"}",
	`{}`,
	`{"id":"a",}`,
	`{"id":"a"`,
	`[]`,
}

// stdEvent decodes b as the slow path does.
func stdEvent(b []byte) (storedEvent, error) {
	var w storedEvent
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&w)
	if err == nil && dec.More() {
		err = errTrailing
	}
	return w, err
}

var errTrailing = json.Unmarshal([]byte("1 2"), new(int))

// checkFast fails when the fast path accepts b but reads it differently
// from encoding/json, or accepts what encoding/json refuses.
func checkFast(t *testing.T, b []byte) {
	var fast storedEvent
	end, ok := parseEvent(b, 0, &fast)
	if !ok || skipSpace(b, end) != len(b) {
		return // left to encoding/json
	}
	std, err := stdEvent(b)
	if err != nil {
		t.Fatalf("fast path accepts %q, encoding/json refuses it: %v", b, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("%q:\n fast %+v\n std  %+v", b, fast, std)
	}
}

func TestFastPathMatchesEncodingJSON(t *testing.T) {
	took := 0
	for _, c := range fastCases {
		checkFast(t, []byte(c))
		var w storedEvent
		if end, ok := parseEvent([]byte(c), 0, &w); ok && skipSpace([]byte(c), end) == len(c) {
			took++
		}
	}
	if took < 3 {
		t.Errorf("the fast path took only %d of the cases; it is not being tested", took)
	}
	// A journal payload as written reads through the fast path.
	line := appendJournalLine(nil, corruptionEventsFlat())
	if _, ok := parseEventArray(line[9 : len(line)-1]); !ok {
		t.Error("the fast path gives up on a journal line this package wrote")
	}
}

func corruptionEventsFlat() []tokenledger.Event {
	a, _ := corruptionEvents()
	return a
}

func FuzzFastPath(f *testing.F) {
	for _, c := range fastCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkFast(t, b) })
}
