package tokenledger_test

import (
	"encoding/json"
	"testing"

	"github.com/tokenledger/tokenledger"
)

func TestParseDollars(t *testing.T) {
	tests := []struct {
		in   string
		want tokenledger.Nanos
	}{
		{"0", 0},
		{"1", 1_000_000_000},
		{"0.000000001", 1},
		{"0.0000000005", 1}, // half rounds up
		{"0.0000000004", 0}, // below half rounds down
		{"0.0012345678915", 1_234_568},
		{"2.5e-3", 2_500_000},
		{"1E2", 100_000_000_000},
		{"1e-50", 0},
		{"1000000", 1_000_000 * tokenledger.NanosPerDollar},
		// Negative zero is zero (Python's json.dumps writes -0.0).
		{"-0", 0}, {"-0.0", 0}, {"-0.000e7", 0}, {"-0E-2", 0},
	}
	for _, tc := range tests {
		got, err := tokenledger.ParseDollars(tc.in)
		if err != nil {
			t.Errorf("ParseDollars(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseDollars(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "-1", "1000000.000000001", "1e41", "1e999999999", "01", ".5", "5.", "1/2", "0x10", "NaN", "Inf", "1e", "1.5.5", " 1",
		"-1e-50", "-0.0000000001", "-", "-01", "--0", "-.0", "-0.", "-0x0"} {
		if got, err := tokenledger.ParseDollars(bad); err == nil {
			t.Errorf("ParseDollars(%q) = %d, want an error", bad, got)
		}
	}
}

func TestNanosJSON(t *testing.T) {
	tests := []struct {
		n    tokenledger.Nanos
		want string
	}{
		{0, "0"},
		{1, "0.000000001"},
		{1_500_000_000, "1.5"},
		{12_000_000_000, "12"},
		{1_234_567, "0.001234567"},
	}
	for _, tc := range tests {
		b, err := json.Marshal(tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("Marshal(%d) = %s, want %s", tc.n, b, tc.want)
		}
		var back tokenledger.Nanos
		if err := json.Unmarshal(b, &back); err != nil || back != tc.n {
			t.Errorf("round trip of %d = %d, %v", tc.n, back, err)
		}
	}
}

// TestCostSumIsExact: ten thousand events of $0.1 each sum to exactly
// $1000 (float64 addition gives 1000.0000000001588).
func TestCostSumIsExact(t *testing.T) {
	var sum tokenledger.Nanos
	for range 10_000 {
		c, err := tokenledger.ParseDollars("0.1")
		if err != nil {
			t.Fatal(err)
		}
		sum += c
	}
	if sum.String() != "1000" {
		t.Errorf("sum = %s, want 1000", sum)
	}
}
