package tokenledger

import (
	"slices"
	"strings"
)

// The sentence for an unknown field of an event says which field was
// probably meant: clients often send a provider's own names
// (prompt_tokens, input_tokens, usage) or a typo of tokenledger's.

// providerFields maps names the providers' APIs and SDKs give usage
// counts to the event field that takes them. Names that differ from an
// event field only in case, "_" or "-" (prompt_tokens, user_id) need no
// entry: unknownFieldMsg finds those itself.
var providerFields = map[string]string{
	"input_tokens": "promptTokens", "inputTokens": "promptTokens", "promptTokenCount": "promptTokens", "prompt": "promptTokens",
	"output_tokens": "completionTokens", "outputTokens": "completionTokens", "candidatesTokenCount": "completionTokens", "completion": "completionTokens",
	"totalTokenCount": "totalTokens", "total": "totalTokens",
	"cache_read_input_tokens": "cacheReadTokens", "cached_tokens": "cacheReadTokens", "cachedContentTokenCount": "cacheReadTokens",
	"cache_creation_input_tokens": "cacheWriteTokens",
	"thoughtsTokenCount":          "reasoningTokens",
	"user":                        "userId", "session": "sessionId", "cost": "costUsd", "modelVersion": "model",
}

// usageObjects are the names of a provider's whole usage object.
var usageObjects = []string{"usage", "usageMetadata", "usage_metadata"}

// firstUnknown picks the unknown field to name from unknown (sorted by
// name), the most telling first: a provider's usage object (a provider's
// whole response was sent), then a field that was probably meant as one
// of the event's, then the first by name.
func firstUnknown(unknown []string) string {
	for _, u := range unknown {
		if slices.Contains(usageObjects, u) {
			return u
		}
	}
	for _, u := range unknown {
		if meantField(u) != "" {
			return u
		}
	}
	return unknown[0]
}

// unknownFieldMsg is the rule an unknown field name broke, with the field
// that was probably meant when there is one.
func unknownFieldMsg(name string) string {
	if slices.Contains(usageObjects, name) {
		return "is not a known field: send a provider's usage as the event's own fields (promptTokens, completionTokens, …; see docs/api.md), or POST the whole response to /api/capture/{provider} (see docs/capture.md)"
	}
	if f := meantField(name); f != "" {
		return "is not a known field; did you mean " + f + "? (see docs/api.md)"
	}
	return "is not a known field (see docs/api.md)"
}

// meantField returns the event field name probably stands for, "" when
// none is close: a provider's name for it, the same letters in another
// case or with "_" or "-", or a typo of at most two letters (of a name of
// five letters or more).
func meantField(name string) string {
	if f, ok := providerFields[name]; ok {
		return f
	}
	key := fold(name)
	best, bestDist := "", 3
	for f := range eventFields {
		fk := fold(f)
		if fk == key {
			return f
		}
		if len(key) >= 5 {
			// The nearest; of equally near ones the first by name, so that
			// the answer is the same every time.
			if d := editDistance(key, fk, 3); d < bestDist || (d == bestDist && best != "" && f < best) {
				best, bestDist = f, d
			}
		}
	}
	return best
}

// fold lower-cases s and drops "_", "-" and spaces.
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', ' ':
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// editDistance is the Levenshtein distance of a and b (bytes), or limit
// when it is limit or more: the field names are short ASCII, and a name
// far longer than any field is not a typo of one.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
