package tokenledger

import (
	"fmt"
	"strings"
	"testing"
)

// TestFieldSlotMatchesNames: fieldSlot's switch and fieldNames name the
// same slots, and nothing else is a slot.
func TestFieldSlotMatchesNames(t *testing.T) {
	for s, name := range fieldNames {
		if got := fieldSlot([]byte(name)); got != s {
			t.Errorf("fieldSlot(%q) = %d, want %d", name, got, s)
		}
	}
	for _, k := range []string{"", "ID", "events", "userid", "costusd", "metadata "} {
		if got := fieldSlot([]byte(k)); got != -1 {
			t.Errorf("fieldSlot(%q) = %d, want -1", k, got)
		}
	}
}

// TestRepeatedUnknownKeys: a repeated key that is no event field is
// refused whether it comes among the first few unknown keys or after
// many (when fieldSet indexes them), by both decoders, and an object of
// many distinct unknown keys is answered with its first by name.
func TestRepeatedUnknownKeys(t *testing.T) {
	object := func(n int, repeat string) string {
		var b strings.Builder
		b.WriteString(`{"model":"m"`)
		for i := range n {
			fmt.Fprintf(&b, `,"k%02d":1`, i)
		}
		if repeat != "" {
			fmt.Fprintf(&b, `,"%s":2`, repeat)
		}
		return b.String() + "}"
	}
	for _, tc := range []struct {
		n      int
		repeat string
		want   string // within the error
	}{
		{3, "k01", "k01 appears more than once"},
		{otherScan, "k00", "k00 appears more than once"},
		{otherScan + 1, "k00", "k00 appears more than once"},
		{40, "k39", "k39 appears more than once"},
		{40, "k02", "k02 appears more than once"},
		{40, "", "k00 is not a known field"},
	} {
		body := object(tc.n, tc.repeat)
		for _, b := range []string{body, "[" + body + "]"} {
			checkSamePaths(t, []byte(b))
			if _, err := DecodeEvents([]byte(b)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%d unknown keys, then %q again: err = %v, want %q", tc.n, tc.repeat, err, tc.want)
			}
		}
	}
}

// BenchmarkDecodeManyUnknownKeys: one object of 1 MiB of distinct unknown
// keys, the worst body for the repeat check (before otherKeys: about 14 s
// an op; `go test -run '^$' -bench ManyUnknown .`).
func BenchmarkDecodeManyUnknownKeys(b *testing.B) {
	var body strings.Builder
	body.WriteString("{")
	for i := 0; body.Len() < 1<<20-20; i++ {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `"%x":1`, i)
	}
	body.WriteString("}")
	raw := []byte(body.String())
	for b.Loop() {
		if _, err := DecodeEvents(raw); err == nil {
			b.Fatal("accepted")
		}
	}
}
