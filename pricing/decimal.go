package pricing

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// decimal is an exact non-negative decimal number: coef × 10^-scale.
// Rates are read from the JSON text into a decimal, never into a float,
// so 6.25e-08 is exactly 62.5 nano-dollars.
type decimal struct {
	coef  *big.Int
	scale int
}

// maxScale bounds the decimals of a rate: 10^-40 dollars a token is far
// below any price, and the bound keeps arithmetic on rates small.
const maxScale = 40

// maxRateText bounds the text of one rate, before anything parses it.
const maxRateText = 64

var one = decimal{coef: big.NewInt(1)}

// parseDecimal reads a JSON number into an exact decimal. It refuses
// what is not a JSON number, a negative number, and numbers with more
// than maxScale decimals or an exponent out of range; the error is the
// end of a sentence ("must …").
func parseDecimal(s string) (decimal, error) {
	if len(s) > maxRateText {
		return decimal{}, errors.New("must be written in at most 64 characters")
	}
	if strings.HasPrefix(s, "-") {
		if d, err := parseDecimal(s[1:]); err == nil && d.coef.Sign() == 0 {
			return d, nil // -0 is 0
		}
		return decimal{}, errors.New("must not be negative")
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e := strings.TrimPrefix(s[i+1:], "+")
		if e == "" || len(e) > 4 || (e[0] == '-' && len(e) == 1) {
			return decimal{}, errNotNumber
		}
		n, err := strconv.Atoi(e)
		if err != nil || !allDigits(strings.TrimPrefix(e, "-")) {
			return decimal{}, errNotNumber
		}
		mant, exp = s[:i], n
	}
	whole, frac, hasDot := strings.Cut(mant, ".")
	if whole == "" || !allDigits(whole) || (len(whole) > 1 && whole[0] == '0') ||
		(hasDot && (frac == "" || !allDigits(frac))) {
		return decimal{}, errNotNumber
	}
	digits := strings.TrimLeft(whole+frac, "0")
	scale := len(frac) - exp
	if digits == "" {
		return decimal{coef: new(big.Int)}, nil
	}
	// Trailing zeros carry no precision: 1.50e-6 is 15 × 10^-7.
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		scale--
	}
	if scale > maxScale {
		return decimal{}, errors.New("must have at most 40 decimals")
	}
	if scale < -maxScale {
		return decimal{}, errTooLarge
	}
	c, _ := new(big.Int).SetString(digits, 10)
	if scale < 0 {
		c.Mul(c, pow10(-scale))
		scale = 0
	}
	return decimal{coef: c, scale: scale}, nil
}

var (
	errNotNumber = errors.New("must be a number of US dollars per token")
	errTooLarge  = errors.New("must be at most 1 dollar per token (rates are per token, not per million tokens)")
)

// allDigits reports whether s is non-empty and holds only ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// pow10 returns 10^n as a new big.Int.
func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// cmp compares d with o: -1, 0 or +1.
func (d decimal) cmp(o decimal) int {
	a, b := d.coef, o.coef
	if d.scale < o.scale {
		a = new(big.Int).Mul(a, pow10(o.scale-d.scale))
	} else if o.scale < d.scale {
		b = new(big.Int).Mul(b, pow10(d.scale-o.scale))
	}
	return a.Cmp(b)
}

// at returns d's coefficient at scale s ≥ d.scale: d × 10^s.
func (d decimal) at(s int) *big.Int {
	return new(big.Int).Mul(d.coef, pow10(s-d.scale))
}

// String writes d as a plain decimal without trailing zeros, e.g.
// 0.0000000625.
func (d decimal) String() string {
	d = d.normal()
	s := d.coef.String()
	if d.scale == 0 {
		return s
	}
	if len(s) <= d.scale {
		s = strings.Repeat("0", d.scale-len(s)+1) + s
	}
	s = s[:len(s)-d.scale] + "." + s[len(s)-d.scale:]
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}

// normal returns d with a non-negative scale (d itself when it has one).
func (d decimal) normal() decimal {
	if d.scale >= 0 {
		return d
	}
	return decimal{coef: d.at(0), scale: 0}
}
