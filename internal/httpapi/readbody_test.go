package httpapi

import (
	"strings"
	"testing"
)

// TestReadBodyWhateverTheDeclaredLength: the declared length only sizes
// the buffer; the body read is all of it, whether declared shorter,
// longer, exactly, or not at all.
func TestReadBodyWhateverTheDeclaredLength(t *testing.T) {
	body := `[` + strings.Repeat(`{"model":"m","promptTokens":1},`, 300) + `{"model":"m"}]`
	for _, declared := range []int64{-1, 0, 1, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 4096} {
		got, err := readBody(strings.NewReader(body), declared)
		if err != nil || string(got) != body {
			t.Errorf("declared %d: read %d bytes, %v; want all %d", declared, len(got), err, len(body))
		}
	}
}
