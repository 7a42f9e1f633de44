package loadgen

import "testing"

// TestReadCounts: accepted and duplicates are read from the answer in any
// order, members before them skipped whole; an answer without both, or
// with one that is not an integer, is refused.
func TestReadCounts(t *testing.T) {
	for _, c := range []struct {
		raw  string
		a, d int
		ok   bool
	}{
		{`{"accepted":1000,"duplicates":0,"ids":["a","b"],"costs":[{"costUsd":0.5}]}`, 1000, 0, true},
		{`{"duplicates":3,"accepted":7}`, 7, 3, true},
		{`{"ids":["x",{"y":[1,2]}],"storageType":"redis","accepted":2,"degraded":false,"duplicates":1}`, 2, 1, true},
		{" \n{ \"accepted\" : 5 , \"duplicates\" : 0 }\n", 5, 0, true},
		{`{"accepted":1}`, 0, 0, false},
		{`{"duplicates":1}`, 0, 0, false},
		{`{"accepted":"1","duplicates":0}`, 0, 0, false},
		{`{"accepted":1.5,"duplicates":0}`, 0, 0, false},
		{`{"accepted":1e3,"duplicates":0}`, 0, 0, false},
		{`{"accepted":null,"duplicates":0}`, 0, 0, false},
		{`{"ids":[1,2,"accepted":1,"duplicates":0}`, 0, 0, false},
		{`["accepted",1,"duplicates",0]`, 0, 0, false},
		{`{}`, 0, 0, false},
		{``, 0, 0, false},
		{`{"accepted":1,`, 0, 0, false},
	} {
		a, d, ok := readCounts([]byte(c.raw))
		if ok != c.ok || (ok && (a != c.a || d != c.d)) {
			t.Errorf("readCounts(%q) = %d, %d, %v; want %d, %d, %v", c.raw, a, d, ok, c.a, c.d, c.ok)
		}
	}
}
