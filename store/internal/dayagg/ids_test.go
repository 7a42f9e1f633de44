package dayagg

import (
	"fmt"
	"slices"
	"testing"
)

// Packed ids: every id put in is found, others are not, the encoding
// round-trips, and a damaged or cut encoding is refused.
func TestIDsRoundTrip(t *testing.T) {
	ids := []string{"0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", "token_1", "b", "0190A5B2-7C3D-7E4F-8A1B-2C3D4E5F6A7B", "ffffffff-ffff-7fff-bfff-ffffffffffff"}
	for i := range 100 {
		ids = append(ids, fmt.Sprintf("0190a5b2-7c3d-7e4f-8a1b-%012x", i*7919), fmt.Sprintf("bench-%d", i))
	}
	p := BuildIDs(ids)
	if p.Len() != len(ids) {
		t.Fatalf("Len %d, want %d", p.Len(), len(ids))
	}
	enc := p.Append(nil)
	q, n, err := DecodeIDs(enc)
	if err != nil || n != len(enc) {
		t.Fatalf("DecodeIDs: %v, used %d of %d bytes", err, n, len(enc))
	}
	for _, set := range []*IDs{&p, &q} {
		for _, id := range ids {
			if !set.Has(id) {
				t.Errorf("Has(%q) = false after packing it", id)
			}
		}
		for _, id := range []string{"0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7c", "bench-100", "", "token_2"} {
			if set.Has(id) {
				t.Errorf("Has(%q) = true, never put in", id)
			}
		}
	}
	var back []string
	q.Each(func(id string) { back = append(back, id) })
	slices.Sort(back)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(back, want) {
		t.Errorf("Each gave %d ids that differ from the %d put in", len(back), len(want))
	}
	for cut := range len(enc) {
		if _, n, err := DecodeIDs(enc[:cut]); err == nil && n > cut {
			t.Fatalf("DecodeIDs read past the %d bytes it was given", cut)
		}
	}
	if _, _, err := DecodeIDs(enc[:len(enc)-1]); err == nil {
		t.Error("an encoding cut short by one byte decoded")
	}
	swapped := slices.Clone(enc)
	copy(swapped[1:17], enc[17:33])
	copy(swapped[17:33], enc[1:17])
	if _, _, err := DecodeIDs(swapped); err == nil {
		t.Error("UUIDs out of order decoded")
	}
}
