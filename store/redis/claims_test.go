package redis

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"strings"
	"testing"
)

// decodeUUID reverses compactUUID, to prove the encoding keeps every bit.
func decodeUUID(f string) string {
	n := new(big.Int)
	for i := 1; i < len(f); i++ {
		n.Mul(n, big.NewInt(95))
		n.Add(n, big.NewInt(int64(f[i]-' ')))
	}
	h := fmt.Sprintf("%032x", n)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// TestClaimField: a canonical lowercase UUID becomes 21 printable bytes
// from which it can be read back; every other id stays as it is, escaped
// when it starts with a marker; a field never exceeds MaxClaimField.
func TestClaimField(t *testing.T) {
	for _, u := range []string{"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"0192e4a1-7c3b-7def-8abc-0123456789ab", "123e4567-e89b-12d3-a456-426614174000"} {
		f := ClaimField(u)
		if len(f) != 1+uuidDigits || f[0] != markUUID {
			t.Errorf("ClaimField(%s) = %q, want %d bytes after %q", u, f, uuidDigits, markUUID)
		}
		for i := 0; i < len(f); i++ {
			if f[i] < ' ' || f[i] > '~' {
				t.Errorf("ClaimField(%s) = %q holds byte %#x, not printable ASCII", u, f, f[i])
			}
		}
		if back := decodeUUID(f); back != u {
			t.Errorf("ClaimField(%s) = %q reads back as %s", u, f, back)
		}
	}
	long := strings.Repeat("x", MaxClaimField)
	for id, want := range map[string]string{
		"evt-1":                                "evt-1",
		"0192E4A1-7C3B-7DEF-8ABC-0123456789AB": "0192E4A1-7C3B-7DEF-8ABC-0123456789AB", // not canonical: literal
		"0192e4a17c3b7def8abc0123456789ab":     "0192e4a17c3b7def8abc0123456789ab",
		"0192e4a1-7c3b-7def-8abc-0123456789ag": "0192e4a1-7c3b-7def-8abc-0123456789ag",
		"0192e4a1+7c3b-7def-8abc-0123456789ab": "0192e4a1+7c3b-7def-8abc-0123456789ab",
		" abc":                                 "~ abc",
		"~abc":                                 "~~abc",
		long:                                   long,
		long + "y":                             "",
		"~" + long[1:]:                         "",
	} {
		if got := ClaimField(id); got != want {
			t.Errorf("ClaimField(%.20q) = %.20q, want %.20q", id, got, want)
		}
	}
}

// TestClaimFieldsDoNotCollide: ids that look alike — a UUID, its
// uppercase form, the literal bytes of its compact field, that escaped —
// get distinct fields.
func TestClaimFieldsDoNotCollide(t *testing.T) {
	u := "0192e4a1-7c3b-7def-8abc-0123456789ab"
	f := ClaimField(u)
	ids := []string{u, strings.ToUpper(u), f, "~" + f, "~~" + f, f[1:], "~" + f[1:], " ", "~", "~ ", "~~",
		"0192e4a1-7c3b-7def-8abc-0123456789aa"}
	seen := map[string]string{}
	for _, id := range ids {
		g := ClaimField(id)
		if g == "" {
			t.Fatalf("ClaimField(%q) is empty", id)
		}
		if other, dup := seen[g]; dup {
			t.Errorf("ids %q and %q share the field %q", other, id, g)
		}
		seen[g] = id
	}
}

// TestClaimBucket: the bucket is FNV-1a of the id modulo ClaimBuckets,
// which must never change (a claim is looked for only in its bucket).
func TestClaimBucket(t *testing.T) {
	for _, id := range []string{"", "a", "evt-1", "0192e4a1-7c3b-7def-8abc-0123456789ab"} {
		h := fnv.New32a()
		h.Write([]byte(id))
		if got, want := ClaimBucket(id), int(h.Sum32()%ClaimBuckets); got != want {
			t.Errorf("ClaimBucket(%q) = %d, want %d", id, got, want)
		}
	}
	if ClaimBucket("a") != 0xe40c292c%4096 {
		t.Errorf("ClaimBucket(\"a\") = %d, want %d: the bucket function changed", ClaimBucket("a"), 0xe40c292c%4096)
	}
	k, _ := NewKeys("tl")
	if old, b, f := k.Claim("2026-11-27", "a"); old != "tl:{2026-11-27}:id:a" || b != "tl:{2026-11-27}:ids:2348" || f != "a" {
		t.Errorf("Claim = %s, %s, %s", old, b, f)
	}
}
