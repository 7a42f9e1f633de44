package tokenledger

import (
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits from the contract (docs/api.md).
const (
	// MaxTokens is the largest value any token field may hold (2^40).
	MaxTokens = 1 << 40
	// MaxIDLength is the longest event id, in bytes.
	MaxIDLength = 128
	// MaxNameLength is the longest model, provider, userId or sessionId, in characters.
	MaxNameLength = 200
	// MaxMetadataBytes is the largest encoded metadata object.
	MaxMetadataBytes = 4096
	// MaxFutureSkew is how far in the future a timestamp may lie.
	MaxFutureSkew = 5 * time.Minute
)

// Event is one LLM call, normalised: token fields follow the contract's
// semantics (promptTokens counts all input tokens, cache tokens included;
// completionTokens all output tokens, reasoning included).
type Event struct {
	// ID is the idempotency key: the same ID within the same UTC day is
	// counted once. The Service assigns a UUIDv7 when it is empty.
	ID string `json:"id"`
	// Timestamp is when the call happened; its UTC date is the day it
	// counts for. The Service sets it to now when it is zero.
	Timestamp time.Time `json:"timestamp"`

	Model     string `json:"model"`
	Provider  string `json:"provider,omitempty"`
	UserID    string `json:"userId,omitempty"`
	SessionID string `json:"sessionId,omitempty"`

	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	CacheReadTokens  int64 `json:"cacheReadTokens,omitempty"`
	CacheWriteTokens int64 `json:"cacheWriteTokens,omitempty"`
	ReasoningTokens  int64 `json:"reasoningTokens,omitempty"`
	TotalTokens      int64 `json:"totalTokens"`

	// Cost is the call's cost in nano-dollars.
	Cost Nanos `json:"costUsd,omitempty"`
	// Pricing says where Cost came from. The decoder sets PricedByClient
	// when the body carries costUsd; Service.ValidateAndPrice sets the rest.
	// Stores keep a count of requests per source.
	Pricing PriceSource `json:"pricing,omitempty"`
	// PriceKey is the price-table key that priced the event, for the
	// answer of POST /api/tokens. Stores do not keep it.
	PriceKey string `json:"-"`

	// Metadata is the caller's free-form object. It is validated but never
	// aggregated, and stores do not keep it.
	Metadata json.RawMessage `json:"metadata,omitempty"`

	// zeroTimeSent is set by the decoder when the body did carry a
	// timestamp and it was the zero time (0001-01-01T00:00:00Z), which the
	// zero Timestamp cannot tell apart from no timestamp at all. ValidateAndPrice
	// then checks it like any other time instead of filling in now.
	zeroTimeSent bool
	// alone is set by the decoder for an event sent on its own (not in an
	// array): ValidateAndPrice's rule errors then name no index, as the
	// decoder's own errors for such a body do not.
	alone bool
}

// Day returns the UTC date the event counts for.
func (e Event) Day() Date { return DateOf(e.Timestamp) }

// Validate checks every rule of the contract that does not depend on the
// clock and returns a *ValidationError for the first one broken. An empty
// ID and a zero Timestamp are allowed (the Service fills them in).
func (e *Event) Validate() error {
	if e.ID != "" {
		if err := validateID(e.ID); err != nil {
			return err
		}
	}
	if strings.TrimSpace(e.Model) == "" {
		return invalid("model", "is required")
	}
	for _, f := range []struct {
		name string
		v    string
	}{{"model", e.Model}, {"provider", e.Provider}, {"userId", e.UserID}, {"sessionId", e.SessionID}} {
		if err := validateName(f.name, f.v); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"promptTokens", e.PromptTokens}, {"completionTokens", e.CompletionTokens},
		{"cacheReadTokens", e.CacheReadTokens}, {"cacheWriteTokens", e.CacheWriteTokens},
		{"reasoningTokens", e.ReasoningTokens}, {"totalTokens", e.TotalTokens},
	} {
		if f.v < 0 || f.v > MaxTokens {
			return invalid(f.name, "must be an integer from 0 to %d", int64(MaxTokens))
		}
	}
	if e.CacheReadTokens+e.CacheWriteTokens > e.PromptTokens {
		return invalid("cacheReadTokens", "plus cacheWriteTokens must not exceed promptTokens (%d)", e.PromptTokens)
	}
	if e.ReasoningTokens > e.CompletionTokens {
		return invalid("reasoningTokens", "must not exceed completionTokens (%d)", e.CompletionTokens)
	}
	if e.TotalTokens < e.PromptTokens+e.CompletionTokens {
		return invalid("totalTokens", "must not be smaller than promptTokens + completionTokens (%d)", e.PromptTokens+e.CompletionTokens)
	}
	if e.Cost < 0 || e.Cost > MaxEventCost {
		return invalid("costUsd", "must be from 0 to 1000000 dollars")
	}
	if len(e.Metadata) > MaxMetadataBytes {
		return invalid("metadata", "must not exceed %d bytes when encoded", MaxMetadataBytes)
	}
	return nil
}

// validateID checks an idempotency key: 1–128 printable ASCII characters
// without spaces.
func validateID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLength {
		return invalid("id", "must be 1 to %d characters long", MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return invalid("id", "must contain only printable ASCII characters without spaces")
		}
	}
	return nil
}

// validateName checks a free-text name field: valid UTF-8, no control
// characters, at most MaxNameLength characters.
func validateName(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	if utf8.RuneCountInString(s) > MaxNameLength {
		return invalid(field, "must be at most %d characters long", MaxNameLength)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// checkWindow rejects an event whose day is outside the retention window
// that ends today, or whose timestamp is more than MaxFutureSkew ahead of now.
func checkWindow(e *Event, now time.Time, retentionDays int) error {
	if e.Timestamp.After(now.Add(MaxFutureSkew)) {
		return invalid("timestamp", "must not be more than 5 minutes in the future")
	}
	y, m, d := now.UTC().Date()
	if start := time.Date(y, m, d-retentionDays, 0, 0, 0, 0, time.UTC); e.Timestamp.Before(start) {
		oldest := DateOf(now).AddDays(-retentionDays)
		return invalid("timestamp", "is older than the retention window (%d days, oldest day kept is %s)", retentionDays, oldest)
	}
	return nil
}
