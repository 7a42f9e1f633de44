package fallback

import "strconv"

// count says how many of noun there are, "1 event" or "3 events": the
// spool's lines and refusals are read by people, often with one event.
func count(n int, noun string) string {
	return strconv.Itoa(n) + " " + plural(n, noun, noun+"s")
}

// plural returns one when n is 1 and many otherwise.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
