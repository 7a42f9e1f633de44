package redis

import (
	"fmt"
	"strings"

	"github.com/tokenledger/tokenledger"
)

// DefaultPrefix is the key prefix used when none is configured
// (TOKENLEDGER_KEY_PREFIX).
const DefaultPrefix = "tokenledger"

// MaxPrefixLength bounds a key prefix, in bytes.
const MaxPrefixLength = 64

// Key kinds: the last part of a day's keys (see docs/redis.md).
const (
	// KindTotals is the hash of the day's totals.
	KindTotals = "totals"
	// KindModels is the hash of per-model counters, fields "<code>|<model>".
	KindModels = "models"
	// KindUsers is the hash of per-user counters, fields "<code>|<userId>".
	KindUsers = "users"
	// KindUserSet is the set of the day's userIds.
	KindUserSet = "userset"
	// KindSessions is the set of the day's sessionIds.
	KindSessions = "sessions"
	// KindID prefixes an event's claim key: "id:<eventId>" (script v6 and
	// before; since v7 only for an id too long for a claim hash).
	KindID = "id:"
	// KindIDs prefixes a day's claim hashes: "ids:<bucket>" (claims.go).
	KindIDs = "ids:"
	// KindClaimExpiry is the string key holding the expiry that every
	// existing claim hash of the day has (the summed script, v9).
	KindClaimExpiry = "claimexp"
	// KindClaimDense is the string key holding the day's expiry once the
	// summed script has made the day's claim hashes hash tables (v10).
	KindClaimDense = "claimdense"
)

// Counter codes: the hash field names of the day totals, and the part
// before "|" in the per-model and per-user hashes.
const (
	CodeTotal      = "t"  // totalTokens
	CodePrompt     = "p"  // promptTokens
	CodeCompletion = "c"  // completionTokens
	CodeRequests   = "n"  // requestCount
	CodeCost       = "$"  // cost in nano-dollars
	CodeCacheRead  = "cr" // cacheReadTokens (day totals only)
	CodeCacheWrite = "cw" // cacheWriteTokens (day totals only)
	CodeReasoning  = "r"  // reasoningTokens (day totals only)

	CodePricedClient = "pc" // requests whose cost the client sent
	CodePricedTable  = "pt" // requests priced by the price table
	CodeUnpriced     = "pu" // requests the table could not price
)

// sourceCodes maps an event's price source to its counter code; "" for
// PriceUnknown, which counts under none.
var sourceCodes = [...]string{tokenledger.PriceUnknown: "", tokenledger.PricedByClient: CodePricedClient,
	tokenledger.PricedByTable: CodePricedTable, tokenledger.Unpriced: CodeUnpriced}

// Keys builds the key names under one prefix. Its zero value is not usable;
// make one with NewKeys.
type Keys struct {
	prefix string
}

// NewKeys returns the key layout under prefix, or an error in one sentence
// when the prefix cannot be used: it must be 1 to 64 printable ASCII
// characters without spaces and without any of { } * ? [ ] \ (braces would
// break the day's hash tag, the others the SCAN pattern Reset uses).
func NewKeys(prefix string) (Keys, error) {
	if prefix == "" || len(prefix) > MaxPrefixLength {
		return Keys{}, fmt.Errorf("key prefix must be 1 to %d characters long", MaxPrefixLength)
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if c <= ' ' || c > '~' || strings.IndexByte(`{}*?[]\`, c) >= 0 {
			return Keys{}, fmt.Errorf("key prefix %q must contain only printable ASCII characters, without spaces or any of { } * ? [ ] \\", prefix)
		}
	}
	return Keys{prefix: prefix}, nil
}

// Prefix returns the prefix.
func (k Keys) Prefix() string { return k.prefix }

// Tag returns the day's hash tag, "{YYYY-MM-DD}".
func Tag(d tokenledger.Date) string { return "{" + string(d) + "}" }

// Day returns "<prefix>:{<day>}:<kind>".
func (k Keys) Day(d tokenledger.Date, kind string) string {
	return k.prefix + ":{" + string(d) + "}:" + kind
}

// ID returns the claim key of event id on day d: "<prefix>:{<day>}:id:<id>".
func (k Keys) ID(d tokenledger.Date, id string) string {
	return k.prefix + ":{" + string(d) + "}:" + KindID + id
}

// Probe returns the key Check writes and reads: "<prefix>:{probe}:<token>".
// It never collides with a day's keys.
func (k Keys) Probe(token string) string {
	return k.prefix + ":{probe}:" + token
}

// Mark returns the key of a marker, "<prefix>:mark:<name>". Markers hold no
// usage data and lie outside Pattern, so Reset leaves them: a reset
// database is not refilled from a file it had already imported.
func (k Keys) Mark(name string) string {
	return k.prefix + ":mark:" + name
}

// Pattern returns the SCAN MATCH pattern of every key under the prefix,
// "<prefix>:{*". Keys of a longer prefix (such as "<prefix>:x") do not match
// it, because a prefix holds no brace.
func (k Keys) Pattern() string { return k.prefix + ":{*" }

// Owns reports whether key belongs to this prefix.
func (k Keys) Owns(key string) bool { return strings.HasPrefix(key, k.prefix+":{") }

// HashTag returns the part of key that Redis Cluster hashes: the text
// between the first "{" and the next "}" when that is not empty, else the
// whole key.
func HashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}
