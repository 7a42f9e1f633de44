package dayagg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// IDs is an immutable, sorted set of event ids packed for memory: a
// canonical UUID (lowercase, with dashes) in 16 bytes, any other id as its
// bytes with a 4-byte offset. Lookups are binary searches.
type IDs struct {
	uuids []byte   // 16 bytes each, ascending
	blob  []byte   // the other ids, ascending, back to back
	offs  []uint32 // len(others)+1 offsets into blob
}

// uuidBytes returns the 16 bytes of id when it is a canonical lowercase
// UUID string, the form the Service assigns.
func uuidBytes(id string) ([16]byte, bool) {
	var u [16]byte
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := hexVal(id[i])
		lo, ok2 := hexVal(id[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

// hexVal decodes one lowercase hex digit.
func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// BuildIDs packs ids, which must be distinct.
func BuildIDs(ids []string) IDs {
	var uu [][16]byte
	var others []string
	for _, id := range ids {
		if u, ok := uuidBytes(id); ok {
			uu = append(uu, u)
		} else {
			others = append(others, id)
		}
	}
	slices.SortFunc(uu, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	sort.Strings(others)
	var p IDs
	p.uuids = make([]byte, 0, 16*len(uu))
	for _, u := range uu {
		p.uuids = append(p.uuids, u[:]...)
	}
	p.offs = make([]uint32, 0, len(others)+1)
	for _, o := range others {
		p.offs = append(p.offs, uint32(len(p.blob)))
		p.blob = append(p.blob, o...)
	}
	p.offs = append(p.offs, uint32(len(p.blob)))
	return p
}

// Len returns how many ids p holds.
func (p *IDs) Len() int { return len(p.uuids)/16 + max(len(p.offs)-1, 0) }

// other returns the i-th non-UUID id.
func (p *IDs) other(i int) []byte { return p.blob[p.offs[i]:p.offs[i+1]] }

// Has reports whether p holds id.
func (p *IDs) Has(id string) bool {
	if u, ok := uuidBytes(id); ok {
		n := len(p.uuids) / 16
		i := sort.Search(n, func(i int) bool { return bytes.Compare(p.uuids[16*i:16*i+16], u[:]) >= 0 })
		return i < n && bytes.Equal(p.uuids[16*i:16*i+16], u[:])
	}
	n := max(len(p.offs)-1, 0)
	i := sort.Search(n, func(i int) bool { return string(p.other(i)) >= id })
	return i < n && string(p.other(i)) == id
}

// Append appends p's encoding to dst: uvarint count and the UUIDs, then
// uvarint count and each other id as uvarint length and bytes.
func (p *IDs) Append(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(p.uuids)/16))
	dst = append(dst, p.uuids...)
	n := max(len(p.offs)-1, 0)
	dst = binary.AppendUvarint(dst, uint64(n))
	for i := range n {
		o := p.other(i)
		dst = binary.AppendUvarint(dst, uint64(len(o)))
		dst = append(dst, o...)
	}
	return dst
}

// errShort is the reason of a decoding that runs past the end.
var errShort = errors.New("the id list ends too early")

// DecodeIDs reads an encoding made by Append from the start of b and
// returns the set and the bytes it used. It checks the bounds and that the
// ids are strictly ascending; the set does not alias b.
func DecodeIDs(b []byte) (IDs, int, error) {
	var p IDs
	nu, k := binary.Uvarint(b)
	if k <= 0 || nu > uint64(len(b)-k)/16 {
		return p, 0, errShort
	}
	pos := k
	p.uuids = slices.Clone(b[pos : pos+16*int(nu)])
	pos += 16 * int(nu)
	for i := 1; i < int(nu); i++ {
		if bytes.Compare(p.uuids[16*(i-1):16*i], p.uuids[16*i:16*i+16]) >= 0 {
			return p, 0, fmt.Errorf("uuid %d is not above the one before it", i)
		}
	}
	no, k := binary.Uvarint(b[pos:])
	if k <= 0 || no > uint64(len(b)-pos-k) {
		return p, 0, errShort
	}
	pos += k
	p.offs = make([]uint32, 0, no+1)
	var prev []byte
	for i := range int(no) {
		l, k := binary.Uvarint(b[pos:])
		if k <= 0 || l > uint64(len(b)-pos-k) || l == 0 || l > 1<<20 {
			return p, 0, errShort
		}
		pos += k
		o := b[pos : pos+int(l)]
		if i > 0 && bytes.Compare(prev, o) >= 0 {
			return p, 0, fmt.Errorf("id %d is not above the one before it", i)
		}
		prev = o
		p.offs = append(p.offs, uint32(len(p.blob)))
		p.blob = append(p.blob, o...)
		pos += int(l)
	}
	p.offs = append(p.offs, uint32(len(p.blob)))
	return p, pos, nil
}

// Each calls fn with every id of p, the UUIDs formatted canonically.
func (p *IDs) Each(fn func(id string)) {
	const hexd = "0123456789abcdef"
	var buf [36]byte
	for i := 0; i+16 <= len(p.uuids); i += 16 {
		u := p.uuids[i : i+16]
		j := 0
		for k, c := range u {
			if k == 4 || k == 6 || k == 8 || k == 10 {
				buf[j] = '-'
				j++
			}
			buf[j], buf[j+1] = hexd[c>>4], hexd[c&15]
			j += 2
		}
		fn(string(buf[:]))
	}
	for i := range max(len(p.offs)-1, 0) {
		fn(string(p.other(i)))
	}
}
