package tokenledger

import "encoding/json"

// The wire fields of an event, each a slot of a fieldSet.
const (
	fieldID = iota
	fieldTimestamp
	fieldModel
	fieldProvider
	fieldUserID
	fieldSessionID
	fieldPromptTokens
	fieldCompletionTokens
	fieldCacheReadTokens
	fieldCacheWriteTokens
	fieldReasoningTokens
	fieldTotalTokens
	fieldTokensUsed
	fieldTokenType
	fieldCostUsd
	fieldMetadata
	numFields
)

// fieldNames are the wire names of the slots.
var fieldNames = [numFields]string{
	"id", "timestamp", "model", "provider", "userId", "sessionId",
	"promptTokens", "completionTokens", "cacheReadTokens", "cacheWriteTokens",
	"reasoningTokens", "totalTokens", "tokensUsed", "tokenType", "costUsd", "metadata",
}

// eventFields lists every field a usage event may carry on the wire.
var eventFields = func() map[string]bool {
	m := make(map[string]bool, numFields)
	for _, n := range fieldNames {
		m[n] = true
	}
	return m
}()

// fieldSlot returns the slot of the wire name k, or -1 for a name that is
// no event field. A switch on string(k) compares without allocating; a
// loop over fieldNames measured about 20 % slower in BenchmarkDecodeEvents.
// TestFieldSlotMatchesNames keeps the two lists the same.
func fieldSlot(k []byte) int {
	switch string(k) {
	case "id":
		return fieldID
	case "timestamp":
		return fieldTimestamp
	case "model":
		return fieldModel
	case "provider":
		return fieldProvider
	case "userId":
		return fieldUserID
	case "sessionId":
		return fieldSessionID
	case "promptTokens":
		return fieldPromptTokens
	case "completionTokens":
		return fieldCompletionTokens
	case "cacheReadTokens":
		return fieldCacheReadTokens
	case "cacheWriteTokens":
		return fieldCacheWriteTokens
	case "reasoningTokens":
		return fieldReasoningTokens
	case "totalTokens":
		return fieldTotalTokens
	case "tokensUsed":
		return fieldTokensUsed
	case "tokenType":
		return fieldTokenType
	case "costUsd":
		return fieldCostUsd
	case "metadata":
		return fieldMetadata
	}
	return -1
}

// fieldSet is one JSON object's members as the decoders read them: an
// event's fields in fixed slots, any other key (an unknown field, or the
// "events" of {"events": [...]}) in order of appearance. It replaces a map
// per event, whose hashing and allocation were a quarter of the server's
// CPU in batches of 1,000.
type fieldSet struct {
	known [numFields]json.RawMessage
	has   uint32 // bit s set when slot s was given
	other []member
	// otherKeys indexes other once it holds more than a few keys, so that
	// an object of many unknown keys is not checked for repeats in
	// quadratic time (a 1 MiB body of them took 14 s).
	otherKeys map[string]struct{}
}

// otherScan is how many other keys are checked for a repeat one by one.
const otherScan = 8

// member is a key that is no event field, with its raw value.
type member struct {
	key string
	raw json.RawMessage
}

// add records key k with its raw value; it reports false when k was
// given before.
func (f *fieldSet) add(k []byte, raw json.RawMessage) bool {
	if s := fieldSlot(k); s >= 0 {
		if f.has&(1<<s) != 0 {
			return false
		}
		f.has |= 1 << s
		f.known[s] = raw
		return true
	}
	if f.otherKeys != nil {
		if _, dup := f.otherKeys[string(k)]; dup {
			return false
		}
	} else {
		for _, m := range f.other {
			if m.key == string(k) {
				return false
			}
		}
	}
	key := string(k)
	f.other = append(f.other, member{key: key, raw: raw})
	switch {
	case f.otherKeys != nil:
		f.otherKeys[key] = struct{}{}
	case len(f.other) > otherScan:
		f.otherKeys = make(map[string]struct{}, 2*len(f.other))
		for _, m := range f.other {
			f.otherKeys[m.key] = struct{}{}
		}
	}
	return true
}

// only returns the value of key when it is the object's one member.
func (f *fieldSet) only(key string) (json.RawMessage, bool) {
	if f.has != 0 || len(f.other) != 1 || f.other[0].key != key {
		return nil, false
	}
	return f.other[0].raw, true
}

// present returns the raw value of slot s unless it is absent or null.
func (f *fieldSet) present(s int) (json.RawMessage, bool) {
	raw := f.known[s]
	if f.has&(1<<s) == 0 || len(raw) == 0 || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// reset empties f for the next object, keeping other's storage.
func (f *fieldSet) reset() {
	f.known, f.has, f.other, f.otherKeys = [numFields]json.RawMessage{}, 0, f.other[:0], nil
}
