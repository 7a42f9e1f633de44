package main

import (
	"errors"
	"flag"
	"strconv"
	"strings"
)

// wholeNumber is a flag that takes a whole number written as the HTTP API
// takes numbers: decimal digits only. Go's own integer flags also take
// 010 (as octal 8), 0x10 and 1_000, which would count something other
// than what the user meant without saying so.
type wholeNumber[T int | int64] struct {
	p   *T
	set bool // given on the command line
}

// numFlag defines a wholeNumber flag with a default value.
func numFlag[T int | int64](fs *flag.FlagSet, p *T, name string, value T, usage string) *wholeNumber[T] {
	*p = value
	w := &wholeNumber[T]{p: p}
	fs.Var(w, name, usage)
	return w
}

func (w *wholeNumber[T]) String() string {
	if w == nil || w.p == nil {
		return "0" // flag's zero value: a default of 0 is not shown in --help
	}
	return strconv.FormatInt(int64(*w.p), 10)
}

// Set takes decimal digits without leading zeros, with an optional minus
// sign: a negative number is left to the command's own check, which says
// what range it takes.
func (w *wholeNumber[T]) Set(s string) error {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return errors.New("must be a whole number written with the digits 0-9 only, such as 1500")
	}
	if len(digits) > 1 && digits[0] == '0' {
		return errors.New("must be written without leading zeros")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || int64(T(n)) != n {
		return errors.New("is too large")
	}
	*w.p, w.set = T(n), true
	return nil
}
