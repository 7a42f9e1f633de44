package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
)

// TestTableTotalIsExactBeyondInt64: a day's counters stay below 2^62, but
// the Total row adds up to 91 days of them, which int64 cannot hold. The
// row must show the exact sum, never a wrapped negative number.
func TestTableTotalIsExactBeyondInt64(t *testing.T) {
	const big = 1<<62 - 1
	var days []tokenledger.Day
	for _, d := range []tokenledger.Date{"2026-11-25", "2026-11-26", "2026-11-27"} {
		days = append(days, tokenledger.Day{Date: d, RequestCount: big, PromptTokens: big, CompletionTokens: 1, TotalTokens: big, Cost: big})
	}
	var out bytes.Buffer
	writeTable(&out, days)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	total := strings.Fields(lines[len(lines)-1])
	// 3 × (2^62 − 1) = 13835058055282163709.
	want := []string{"Total", "13835058055282163709", "13835058055282163709", "3", "13835058055282163709", "$13835058055.282163709", "-", "-", "-"}
	if strings.Join(total, " ") != strings.Join(want, " ") {
		t.Errorf("total row %q, want %q\n%s", total, want, out.String())
	}
}
