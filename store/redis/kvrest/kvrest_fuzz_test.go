package kvrest

import (
	"testing"

	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// checkReply asserts that v is what a Doer may return: nil, a string, an
// int64, a ReplyError, or an array of those.
func checkReply(t *testing.T, v any, depth int) {
	t.Helper()
	switch x := v.(type) {
	case nil, string, int64, wire.ReplyError:
	case []any:
		for _, e := range x {
			checkReply(t, e, depth+1)
		}
	default:
		t.Fatalf("reply holds a %T (%v)", v, v)
	}
}

// FuzzDecodeReplies feeds arbitrary answers to the REST reply decoder: it
// must not panic, and it returns either an error or exactly n replies of
// the types a Doer returns.
func FuzzDecodeReplies(f *testing.F) {
	for _, s := range []struct {
		body string
		n    uint8
	}{
		{`{"result":"OK"}`, 1}, {`{"result":null}`, 1}, {`{"result":9007199254740993}`, 1},
		{`{"result":["a",null,3,["0",["k1","k2"]]]}`, 1}, {`{"error":"NOSCRIPT No matching script."}`, 1},
		{`[{"result":"OK"},{"error":"ERR x"},{"result":[]}]`, 3}, {`{"result":1.5}`, 1},
		{`{"result":1e400}`, 1}, {`{"result":-99999999999999999999}`, 1}, {`{"result":true}`, 1},
		{`{"result":{"a":1}}`, 1}, {`[{"result":1},{"res`, 2}, {`<html>Bad gateway</html>`, 1}, {`{}`, 0},
		{`{"result":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`, 1},
		{`{"result":"a","result":"b"}`, 1}, {"{\"result\":\"\xff\"}", 1},
	} {
		f.Add([]byte(s.body), s.n)
	}
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		replies, err := decodeReplies(data, int(n))
		if err != nil {
			if replies != nil {
				t.Fatal("replies with an error")
			}
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if len(replies) != int(n) {
			t.Fatalf("%d replies for %d commands", len(replies), n)
		}
		for _, r := range replies {
			checkReply(t, r, 0)
		}
	})
}
