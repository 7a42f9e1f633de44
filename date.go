package tokenledger

import (
	"fmt"
	"time"
)

// Date is a UTC calendar day written as "YYYY-MM-DD". Dates compare
// correctly as strings, so "2026-11-27" < "2026-11-28".
type Date string

// dateLayout is the layout of a Date.
const dateLayout = "2006-01-02"

// DateOf returns the UTC calendar day of t.
func DateOf(t time.Time) Date {
	y, m, d := t.UTC().Date()
	if y < 0 || y > 9999 {
		return Date(t.UTC().Format(dateLayout))
	}
	// The common case written by hand: Format is the larger part of
	// validating a batch.
	b := [10]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
		byte('0' + int(m)/10), byte('0' + int(m)%10), '-', byte('0' + d/10), byte('0' + d%10)}
	return Date(b[:])
}

// ParseDate parses s as a "YYYY-MM-DD" date. Its error is a *DateError,
// which says whether s is not written as YYYY-MM-DD or names no real day.
func ParseDate(s string) (Date, error) {
	if !dateShaped(s) {
		return "", &DateError{Value: s}
	}
	if why := notRealDate(s); why != "" {
		return "", &DateError{Value: s, NotReal: why}
	}
	return Date(s), nil
}

// DateError is ParseDate's error.
type DateError struct {
	// Value is what was given.
	Value string
	// NotReal, when set, says why a value written as YYYY-MM-DD names no
	// day, such as "February 2026 has 28 days"; it is empty when the value
	// is not written as YYYY-MM-DD at all.
	NotReal string
}

func (e *DateError) Error() string {
	if e.NotReal != "" {
		return fmt.Sprintf("date %s is not a real date: %s", e.Value, e.NotReal)
	}
	return fmt.Sprintf("date %q is not a valid YYYY-MM-DD date", truncate(e.Value, 40))
}

// dateShaped reports whether s is four digits, "-", two digits, "-", two
// digits.
func dateShaped(s string) bool {
	if len(s) != len(dateLayout) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (i == 4 || i == 7) != (s[i] == '-') || (s[i] != '-' && (s[i] < '0' || s[i] > '9')) {
			return false
		}
	}
	return true
}

// notRealDate says why s, written as YYYY-MM-DD, names no day ("" when it
// names one): a month outside 1 to 12 or a day past the month's last.
func notRealDate(s string) string {
	year, month, day := atoi(s[:4]), atoi(s[5:7]), atoi(s[8:])
	if month < 1 || month > 12 {
		return fmt.Sprintf("there is no month %d", month)
	}
	last := time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if day < 1 || day > last {
		if day == 0 {
			return "there is no day 0"
		}
		return fmt.Sprintf("%s %d has %d days", time.Month(month), year, last)
	}
	return ""
}

// atoi reads decimal digits.
func atoi(digits string) int {
	n := 0
	for i := 0; i < len(digits); i++ {
		n = 10*n + int(digits[i]-'0')
	}
	return n
}

// Time returns midnight UTC at the start of d. An invalid d gives the zero time.
func (d Date) Time() time.Time {
	t, _ := time.Parse(dateLayout, string(d))
	return t
}

// AddDays returns the date n days after d (before d when n is negative).
func (d Date) AddDays(n int) Date {
	return DateOf(d.Time().AddDate(0, 0, n))
}

// DaysBetween returns the number of days from a to b (negative when b is
// before a).
func DaysBetween(a, b Date) int {
	return int(b.Time().Sub(a.Time()).Hours() / 24)
}

// String returns d as "YYYY-MM-DD".
func (d Date) String() string { return string(d) }

// truncate shortens s for use inside an error message.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
