// Package jsonenc holds the hand-written JSON encoding shared by the
// packages that build JSON by appending to a byte slice instead of going
// through encoding/json's reflection.
package jsonenc

// AppendString appends s as a JSON string to dst. s must be valid UTF-8
// (the callers check it, or have validated it earlier), so only quotes,
// backslashes and control characters need escaping; everything else,
// including non-ASCII text, is copied as it is.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
