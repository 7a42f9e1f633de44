package tokenledger

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// Nanos is an amount of US dollars in integer nano-dollars (1e-9 USD).
// Costs are stored and summed as Nanos so that totals never drift the way
// floating-point sums do. It encodes to JSON as an exact decimal number of
// dollars, e.g. 1234567 nano-dollars as 0.001234567.
type Nanos int64

// NanosPerDollar is the number of nano-dollars in one dollar.
const NanosPerDollar = 1_000_000_000

// MaxEventCost is the largest cost one event may carry: one million dollars.
const MaxEventCost Nanos = 1_000_000 * NanosPerDollar

var errCostSyntax = errors.New("must be a non-negative decimal number of US dollars")

// MaxCostChars is the longest cost text ParseDollars reads: far more than
// any amount up to MaxEventCost needs, to the nano-dollar, in any notation.
const MaxCostChars = 64

var errCostLength = errors.New("must be written in at most 64 characters")

// ParseDollars converts a decimal number of dollars, as written in JSON
// (for example "0.0025" or "2.5e-3"), into nano-dollars, rounding half up
// to the nearest nano-dollar. It rejects negative values, values above
// MaxEventCost, text longer than MaxCostChars and anything that is not a
// JSON number.
func ParseDollars(s string) (Nanos, error) {
	// Bound the text before big.Rat reads it: its parsing costs more than
	// linear time, and one 1 MiB costUsd took seconds of CPU per request.
	if len(s) > MaxCostChars {
		return 0, errCostLength
	}
	if rest, neg := strings.CutPrefix(s, "-"); neg {
		// Negative zero (Python writes -0.0) is zero; any other is refused.
		if isJSONNumber(rest) {
			if _, zero := magnitude(rest); zero {
				return 0, nil
			}
		}
		return 0, errors.New("must not be negative")
	}
	if !isJSONNumber(s) {
		return 0, errCostSyntax
	}
	if n, ok := plainDollars(s); ok {
		if n > MaxEventCost {
			return 0, errors.New("must not exceed 1000000 dollars")
		}
		return n, nil
	}
	return ratDollars(s)
}

// plainDollars converts the common form — up to 7 whole digits and up to
// 9 decimals, no exponent — exactly with integers; ok is false for
// anything else, which ratDollars converts. s is a JSON number.
func plainDollars(s string) (Nanos, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(whole) > 7 || len(frac) > 9 || strings.ContainsAny(frac, "eE") || strings.ContainsAny(whole, "eE") {
		return 0, false
	}
	var n int64
	for i := 0; i < len(whole); i++ {
		n = n*10 + int64(whole[i]-'0')
	}
	n *= NanosPerDollar
	scale := int64(NanosPerDollar)
	for i := 0; i < len(frac); i++ {
		scale /= 10
		n += int64(frac[i]-'0') * scale
	}
	return Nanos(n), true
}

// ratDollars is ParseDollars for any JSON number, with big.Rat.
func ratDollars(s string) (Nanos, error) {
	// Settle what is certain before big.Rat expands the exponent, so a
	// huge exponent costs no CPU. The exponent alone decides nothing: a
	// long mantissa can offset it ("1" and 47 zeros "e-45" is 100
	// dollars), so judge by the place of the first significant digit.
	switch q, zero := magnitude(s); {
	case zero:
		return 0, nil
	case q >= 7: // at least 10^7 dollars
		return 0, errors.New("must not exceed 1000000 dollars")
	case q <= -11: // below 10^-10 dollars, under half a nano-dollar
		return 0, nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, errCostSyntax
	}
	r.Mul(r, big.NewRat(NanosPerDollar, 1))
	r.Add(r, big.NewRat(1, 2)) // round half up: floor(r + 1/2)
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() || Nanos(n.Int64()) > MaxEventCost {
		return 0, errors.New("must not exceed 1000000 dollars")
	}
	return Nanos(n.Int64()), nil
}

// magnitude returns q such that the JSON number s lies in [10^q, 10^(q+1)),
// or zero true when every digit of s is 0. An exponent too large for an int
// is clamped: s is at most MaxCostChars long, so its mantissa cannot offset
// more than that many places, and the clamped q is just as certain.
func magnitude(s string) (q int, zero bool) {
	mant, expText := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expText = s[:i], s[i+1:]
	}
	exp := 0
	if expText != "" {
		neg := expText[0] == '-'
		expText = strings.TrimLeft(expText, "+-")
		for i := 0; i < len(expText) && exp < 1_000_000; i++ {
			exp = exp*10 + int(expText[i]-'0')
		}
		if neg {
			exp = -exp
		}
	}
	whole, frac, _ := strings.Cut(mant, ".")
	if t := strings.TrimLeft(whole, "0"); t != "" {
		return len(t) - 1 + exp, false
	}
	t := strings.TrimLeft(frac, "0")
	if t == "" {
		return 0, true
	}
	return -(len(frac) - len(t) + 1) + exp, false
}

// isJSONNumber reports whether s is a non-negative number in JSON's grammar:
// digits without leading zeros, an optional fraction and exponent.
func isJSONNumber(s string) bool {
	i, n := 0, len(s)
	digits := func() int {
		start := i
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < n && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < n && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < n && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == n
}

// String returns n as an exact decimal number of dollars without trailing
// zeros, e.g. "0.001234567" or "12".
func (n Nanos) String() string {
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	whole := u / NanosPerDollar
	frac := u % NanosPerDollar
	s := strconv.FormatUint(whole, 10)
	if frac != 0 {
		f := strconv.FormatUint(frac+NanosPerDollar, 10)[1:] // zero-padded to 9 digits
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// MarshalJSON encodes n as a JSON number of dollars.
func (n Nanos) MarshalJSON() ([]byte, error) {
	return []byte(n.String()), nil
}

// UnmarshalJSON decodes a JSON number of dollars into nano-dollars.
func (n *Nanos) UnmarshalJSON(b []byte) error {
	v, err := ParseDollars(string(b))
	if err != nil {
		return err
	}
	*n = v
	return nil
}
