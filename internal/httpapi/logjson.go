package httpapi

import (
	"net/http"
	"strconv"
)

// writeLogAnswer writes a's answer: byte for byte what encode writes, but
// built by hand when every string in it is plain (appendLogAnswer), since
// encoding/json's reflection and the costs' MarshalJSON were about a tenth
// of the server's CPU for batches of 1,000 (a CPU profile of serve,
// docs/performance-history.md).
func writeLogAnswer(w http.ResponseWriter, a logAnswer) {
	b, ok := appendLogAnswer(make([]byte, 0, 128+64*len(a.IDs)+48*len(a.Costs)), a)
	if !ok {
		encode(w, http.StatusOK, a)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// appendLogAnswer appends a as encoding/json's Encoder (HTML not escaped)
// writes it, newline included, or reports false when a string needs
// escaping or a price source has no name: encode then writes it.
func appendLogAnswer(b []byte, a logAnswer) ([]byte, bool) {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(a.Accepted), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(a.Duplicates), 10)
	b = append(b, `,"ids":`...)
	if a.IDs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, id := range a.IDs {
			if i > 0 {
				b = append(b, ',')
			}
			if b = appendPlain(b, id); b == nil {
				return nil, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"storageType":`...)
	if b = appendPlain(b, a.StorageType); b == nil {
		return nil, false
	}
	b = append(b, `,"degraded":`...)
	b = strconv.AppendBool(b, a.Degraded)
	b = append(b, `,"costs":`...)
	if a.Costs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, c := range a.Costs {
			if i > 0 {
				b = append(b, ',')
			}
			if b = appendCost(b, c); b == nil {
				return nil, false
			}
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...), true
}

// appendCost appends one EventCost, or returns nil when it needs encode.
func appendCost(b []byte, c EventCost) []byte {
	b = append(b, `{"costUsd":`...)
	b = append(b, c.Cost.String()...)
	b = append(b, `,"pricing":`...)
	name, err := c.Pricing.MarshalText()
	if err != nil {
		return nil
	}
	if b = appendPlain(b, string(name)); b == nil {
		return nil
	}
	if c.PriceKey != "" {
		b = append(b, `,"priceKey":`...)
		if b = appendPlain(b, c.PriceKey); b == nil {
			return nil
		}
	}
	return append(b, '}')
}

// appendPlain appends s as a JSON string when it is printable ASCII
// without '"' and '\', which encoding/json writes unchanged; otherwise it
// returns nil.
func appendPlain(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return nil
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
