package kvrest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

func TestEncodeCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmds [][]any
		want string
	}{
		{"one command is a flat array", [][]any{{"GET", "k"}}, `["GET","k"]`},
		{"integers travel as text", [][]any{{"EXPIREAT", "k", int64(1 << 62)}, {"INCRBY", "k", -3}}, `[["EXPIREAT","k","4611686018427387904"],["INCRBY","k","-3"]]`},
		{"escapes", [][]any{{"SET", "k", "a\"b\\c\nd\te\x01f\u00e9\u2028<&>"}}, `["SET","k","a\"b\\c\nd\te\u0001fé` + "\u2028" + `<&>"]`},
		{"empty string", [][]any{{"SET", "k", ""}}, `["SET","k",""]`},
	} {
		got, err := encodeCommands(tc.cmds)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %s, %v; want %s", tc.name, got, err, tc.want)
		}
		// And it is JSON that reads back as the same strings.
		var back any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%s: %s is not JSON: %v", tc.name, got, err)
		}
	}
	// Every byte below 0x80 round-trips.
	var b strings.Builder
	for c := range 0x80 {
		b.WriteByte(byte(c))
	}
	body, err := encodeCommands([][]any{{"SET", b.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var back []string
	if err := json.Unmarshal(body, &back); err != nil || back[1] != b.String() {
		t.Errorf("ASCII did not round-trip: %v %q", err, back)
	}
	for _, bad := range [][]any{{}, {"SET", "k", "\xff"}, {"SET", "k", 1.5}} {
		if _, err := encodeCommands([][]any{bad}); err == nil {
			t.Errorf("encodeCommands(%q) succeeded, want an error", bad)
		}
	}
}

func TestDecodeReplies(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		n    int
		want []any
	}{
		{"ok", `{"result":"OK"}`, 1, []any{"OK"}},
		{"null", `{"result":null}`, 1, []any{nil}},
		{"integer", `{"result":9007199254740993}`, 1, []any{int64(9007199254740993)}},
		{"array", `{"result":["a",null,3,["0",["k1","k2"]]]}`, 1, []any{[]any{"a", nil, int64(3), []any{"0", []any{"k1", "k2"}}}}},
		{"error", `{"error":"NOSCRIPT No matching script."}`, 1, []any{wire.ReplyError("NOSCRIPT No matching script.")}},
		{"pipeline", `[{"result":"OK"},{"error":"ERR x"},{"result":[]}]`, 3, []any{"OK", wire.ReplyError("ERR x"), []any{}}},
		{"unknown fields are ignored", `{"result":1,"took":"3ms"}`, 1, []any{int64(1)}},
		{"a float stays text", `{"result":1.5}`, 1, []any{"1.5"}},
	} {
		got, err := decodeReplies([]byte(tc.body), tc.n)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v, %v; want %#v", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		body string
		n    int
	}{
		{`{}`, 1},
		{`[{"result":1}]`, 1},
		{`{"result":1}`, 2},
		{`[{"result":1}]`, 2},
		{`[{"result":1},{"result":true}]`, 2},
		{`[{"result":1},{"result":{"a":1}}]`, 2},
		{`<html>Bad gateway</html>`, 1},
		{`[{"result":1},{"res`, 2},
	} {
		if got, err := decodeReplies([]byte(tc.body), tc.n); err == nil {
			t.Errorf("decodeReplies(%s, %d) = %v, want an error", tc.body, tc.n, got)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n <= 12; n++ {
		d := min(backoffCap, backoffBase<<min(n-1, 20))
		for range 50 {
			if w := backoff(n); w < d/2 || w > d {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, w, d/2, d)
			}
		}
	}
}
