package tokenledger

import (
	"math/big"
	"strings"
	"testing"
)

// TestParseDollarsMantissaOffsetsExponent: an exponent far from zero is
// not enough to call a cost zero or too large, since the mantissa's own
// digits can move the value back into range. Each case is checked against
// the exact value.
func TestParseDollarsMantissaOffsetsExponent(t *testing.T) {
	zeros := strings.Repeat("0", 47)
	for _, c := range []struct {
		in   string
		want Nanos
	}{
		{"1" + zeros + "e-45", 100 * NanosPerDollar},         // 10^47 × 10^-45
		{"0." + zeros + "01e45", 100_000},                    // 10^-49 × 10^45
		{"0." + zeros + "01e55", 1_000_000 * NanosPerDollar}, // exactly the cap
		{"25" + zeros + "e-57", 3},                           // 2.5e-9 rounds half up
		{"0e99999999999999999999", 0},                        // zero, whatever the exponent
		{"0.000e-99999999999999999999", 0},
		{"1e-99999999999999999999", 0},
	} {
		got, err := ParseDollars(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDollars(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, tooBig := range []string{
		"0." + strings.Repeat("0", 40) + "1000000000000001e47", // one nano-dollar over the cap
		"0." + zeros + "1e56", // 10^7
		"1e99999999999999999999",
	} {
		if got, err := ParseDollars(tooBig); err == nil || err.Error() != "must not exceed 1000000 dollars" {
			t.Errorf("ParseDollars(%q) = %d, %v; want the too-large error", tooBig, got, err)
		}
	}
}

// TestMagnitudeMatchesExactValue compares the shortcut's order of
// magnitude with big.Rat over mantissas of many lengths and exponents.
func TestMagnitudeMatchesExactValue(t *testing.T) {
	for _, mant := range []string{"1", "9", "10", "0.1", "0.09", "123.45", "0." + strings.Repeat("0", 30) + "7", "5" + strings.Repeat("0", 30), "99.99"} {
		for exp := -60; exp <= 60; exp += 7 {
			s := mant + "e" + itoa(exp)
			q, zero := magnitude(s)
			r, _ := new(big.Rat).SetString(s)
			if zero {
				t.Fatalf("magnitude(%q) says zero", s)
			}
			lo, _ := new(big.Rat).SetString("1e" + itoa(q))
			hi, _ := new(big.Rat).SetString("1e" + itoa(q+1))
			if r.Cmp(lo) < 0 || r.Cmp(hi) >= 0 {
				t.Errorf("magnitude(%q) = %d, but the value is not in [10^%d, 10^%d)", s, q, q, q+1)
			}
		}
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }
