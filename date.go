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
	return Date(t.UTC().Format(dateLayout))
}

// ParseDate parses s as a "YYYY-MM-DD" date and returns an error that says
// what is wrong when it is not one.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil || t.Format(dateLayout) != s {
		return "", fmt.Errorf("date %q is not a valid YYYY-MM-DD date", truncate(s, 40))
	}
	return Date(s), nil
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
