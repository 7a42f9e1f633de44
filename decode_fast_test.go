package tokenledger

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// fastSeeds are bodies for the fast path, good and bad.
var fastSeeds = []string{
	`{"model":"gpt-4o","promptTokens":10,"completionTokens":5}`,
	` [ {"id":"a","timestamp":"2026-11-27T12:00:00.123Z","model":"m","userId":"u","sessionId":"s","promptTokens":1,"completionTokens":2,"costUsd":0.000000015} ,{"model":"b","tokensUsed":5,"tokenType":"total"}] `,
	`{"events":[{"model":"m","metadata":{"k":[1,{"x":null}],"s":"a\"b"}}]}`,
	`{"events":[{"model":"m"}],"x":1}`, `{"events":{"model":"m"}}`, `{"events":[]}`, `{"events":[1]}`,
	`{"model":"m","model":"n"}`, `{"model":"m\n"}`, `{"model":"m\u0041"}`, `{"model":"m","promptTokens":-1}`,
	`{"model":"m","promptTokens":1.0}`, `{"model":"m","promptTokens":01}`, `{"model":"m","promptTokens":1e3}`,
	`{"model":"m","costUsd":"1"}`, `{"model":"m","costUsd":-0}`, `{"model":"m","costUsd":1.}`, `{"model":"m","costUsd":.5}`,
	`{"model":{"a":1}}`, `[{"model":{"a":1}}]`, `[{"model":"m","metadata":[1]}]`, `[{"model":"m","metadata":{"a":}}]`,
	`[{"model":"m"},]`, `[{"model":"m"}}`, `[{"model":"m"}] x`, `{"model":"m"}{"model":"n"}`, `[]`, `[ ]`, `{}`,
	`[{"model":"m"},{"model":"","promptTokens":1}]`, `[{"promptTokens":true,"model":"m"}]`, `{"model":null,"userId":null}`,
	`{"model":"m","typo":1}`, `{"model" "m"}`, `{"model":"m",}`, `{model:"m"}`, `{"model":"m","promptTokens":1}  `, `{"model":tru}`,
	"\ufeff{\"model\":\"m\"}", `"x"`, `null`, `1`, ``, `{`, `[`, `{"events":[{"model":"m"},{"model":"n","promptTokens":-5}]}`,
	`{"model":"m","userId":"\ud800"}`, `[{"model":"m","sessionId":"\ud83d\ude00"},{"model":"m","userId":"\udfff"}]`,
}

// checkSamePaths fails when the fast path answers body differently from
// the slow one.
func checkSamePaths(t *testing.T, body []byte) {
	if !utf8.Valid(body) {
		return
	}
	fast, ferr, ok := decodeFast(body)
	if !ok {
		return
	}
	slow, serr := decodeSlow(body)
	if fmt.Sprint(ferr) != fmt.Sprint(serr) {
		t.Fatalf("%q: fast error %v, slow error %v", body, ferr, serr)
	}
	var fve, sve *ValidationError
	if errors.As(ferr, &fve) != errors.As(serr, &sve) || (fve != nil && *fve != *sve) {
		t.Fatalf("%q: fast error %#v, slow error %#v", body, fve, sve)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q:\nfast %#v\nslow %#v", body, fast, slow)
	}
}

func TestDecodeFastMatchesSlow(t *testing.T) {
	answered := 0
	for _, s := range fastSeeds {
		checkSamePaths(t, []byte(s))
		if _, _, ok := decodeFast([]byte(s)); ok {
			answered++
		}
	}
	if answered < 10 {
		t.Errorf("the fast path answered only %d of %d seeds", answered, len(fastSeeds))
	}
	// A batch of 1000 is taken, 1001 is left to the slow path.
	one := `{"model":"m","promptTokens":1}`
	for n, want := range map[int]bool{1000: true, 1001: false} {
		body := []byte("[" + strings.Repeat(one+",", n-1) + one + "]")
		if _, _, ok := decodeFast(body); ok != want {
			t.Errorf("%d events: fast path answered %v", n, ok)
		}
		checkSamePaths(t, body)
	}
}

// FuzzDecodeFast checks that the fast path, whenever it answers, answers
// exactly as the slow path does.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSamePaths(t, body)
		checkSamePaths(t, bytes.TrimSpace(body))
	})
}

func BenchmarkDecodeEvents(b *testing.B) {
	single := []byte(`{"id":"bench-1234abcd-7-123456","timestamp":"2026-11-27T12:00:00.000Z","model":"bench-1234abcd-m3","userId":"bench-1234abcd-u42","sessionId":"bench-1234abcd-s17","promptTokens":1234,"completionTokens":567,"costUsd":0.000010506}`)
	batch := []byte("[" + strings.Repeat(string(single)+",", 99) + string(single) + "]")
	for _, bc := range []struct {
		name string
		body []byte
		fn   func([]byte) ([]Event, error)
	}{
		{"single/fast", single, DecodeEvents}, {"single/slow", single, decodeSlow},
		{"batch100/fast", batch, DecodeEvents}, {"batch100/slow", batch, decodeSlow},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.fn(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzPlainDollars checks the integer fast path of ParseDollars against
// big.Rat.
func FuzzPlainDollars(f *testing.F) {
	for _, s := range []string{"0", "0.1", "1000000", "1000000.000000001", "9999999.999999999", "0.000000015", "12.5", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isJSONNumber(s) {
			return
		}
		n, ok := plainDollars(s)
		if !ok {
			return
		}
		want, err := ratDollars(s)
		if (err == nil) != (n <= MaxEventCost) || (err == nil && n != want) {
			t.Fatalf("%q: plain %d, big.Rat %d (%v)", s, n, want, err)
		}
	})
}
