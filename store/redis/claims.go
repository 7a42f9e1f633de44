package redis

import (
	"math/bits"
	"strconv"

	"github.com/tokenledger/tokenledger"
)

// Claims of event ids (docs/redis.md, "Claims"): since script v7 a day's
// claims live in ClaimBuckets hashes, "<prefix>:{<day>}:ids:<b>", one field
// per id, instead of one string key per id (v6 and before,
// "<prefix>:{<day>}:id:<id>"), which the script still honours. Small
// hashes are listpacks, about 25 bytes per claim against about 140 per key.

// ClaimBuckets is how many claim hashes a day has. It is fixed, so an id is
// always looked for in the one bucket it was claimed in: at 10^7 events over
// 91 days (110,000 a day) a bucket holds about 27 ids, far below the 512
// entries (hash-max-listpack-entries, Redis 7.0's default) up to which
// Redis keeps a hash as a listpack; a day stays compact up to about
// 1,500,000 events.
const ClaimBuckets = 4096

// DenseDayEvents is how many events make a day dense: 128 claims a hash on
// average, where a listpack's search costs about what a hash table's
// lookup does. From there on the summed script (v10) makes the day's claim
// hashes hash tables, so a claim costs the same however full the day gets;
// a claim then takes about 89 bytes instead of 28 (docs/redis.md, "Dense
// days"). It must equal the script's DENSE.
const DenseDayEvents = ClaimBuckets * 128

// MaxClaimField is the longest field a claim hash takes: Redis keeps a hash
// as a listpack only while every field is at most hash-max-listpack-value
// (64) bytes. An id whose field would be longer is claimed with its own key,
// as before v7.
const MaxClaimField = 64

// Marker bytes of ClaimField. A valid id is printable ASCII without
// spaces, so no valid id starts with markUUID; but the encoding is exact
// for any string: a field starting with markUUID is always a compacted
// UUID, and a literal id that starts with a marker byte is escaped with
// markEscape. Every field is printable ASCII, which the KV REST API's JSON
// carries unchanged.
const (
	markUUID   = ' '
	markEscape = '~'
)

// uuidDigits is the length of a compacted UUID after its marker: its 128
// bits in base 95 (the printable ASCII characters, space to '~').
const uuidDigits = 20

// ClaimField returns the hash field that claims id: a canonical lowercase
// UUID (8-4-4-4-12 hex digits) as markUUID and its 128 bits in 20 base-95
// digits, any other id as it is (behind markEscape when it starts with a
// marker byte). Distinct ids give distinct fields. It returns "" when the
// field would be longer than MaxClaimField: such an id is claimed with its
// own key.
func ClaimField(id string) string {
	if u, ok := compactUUID(id); ok {
		return u
	}
	if id != "" && (id[0] == markUUID || id[0] == markEscape) {
		id = string(markEscape) + id
	}
	if len(id) > MaxClaimField {
		return ""
	}
	return id
}

// compactUUID returns the field of id when id is a canonical lowercase
// UUID; uppercase hex is another id, and stays literal.
func compactUUID(id string) (string, bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return "", false
	}
	var hi, lo uint64
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		d, ok := hexDigit(id[i])
		if !ok {
			return "", false
		}
		hi = hi<<4 | lo>>60
		lo = lo<<4 | uint64(d)
	}
	var b [1 + uuidDigits]byte
	b[0] = markUUID
	for j := uuidDigits; j >= 1; j-- {
		var r uint64
		hi, r = hi/95, hi%95
		lo, r = bits.Div64(r, lo, 95)
		b[j] = byte(' ' + r)
	}
	return string(b[:]), true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// ClaimBucket returns the bucket (0 to ClaimBuckets-1) of a claim field:
// FNV-1a (32 bits) of its bytes. It must never change: a claim is found
// only in the bucket it was written to. Hashing the field, not the id,
// keeps the claim a function of the field alone: two ids share a claim
// exactly when they share a field, which ClaimField never lets them.
func ClaimBucket(field string) int {
	h := uint32(2166136261)
	for i := 0; i < len(field); i++ {
		h ^= uint32(field[i])
		h *= 16777619
	}
	return int(h % ClaimBuckets)
}

// Bucket returns the claim hash b of day d: "<prefix>:{<day>}:ids:<b>".
func (k Keys) Bucket(d tokenledger.Date, b int) string {
	return k.prefix + ":{" + string(d) + "}:" + KindIDs + strconv.Itoa(b)
}

// Claim returns what the script needs to claim id on day d: its key as v6
// claimed it (checked, and used for an id whose field is too long), its
// bucket and its field ("" for the key).
func (k Keys) Claim(d tokenledger.Date, id string) (old, bucket, field string) {
	field = ClaimField(id)
	return k.ID(d, id), k.Bucket(d, ClaimBucket(field)), field
}
