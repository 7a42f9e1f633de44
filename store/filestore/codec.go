package filestore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/jsonenc"
)

// storedEvent is an event as the file and the journal hold it. It mirrors
// tokenledger.Event's JSON but reads the cost as a number string, so that
// the common exact decimals are converted without big.Rat.
type storedEvent struct {
	ID               string          `json:"id"`
	Timestamp        time.Time       `json:"timestamp"`
	Model            string          `json:"model"`
	Provider         string          `json:"provider"`
	UserID           string          `json:"userId"`
	SessionID        string          `json:"sessionId"`
	PromptTokens     int64           `json:"promptTokens"`
	CompletionTokens int64           `json:"completionTokens"`
	CacheReadTokens  int64           `json:"cacheReadTokens"`
	CacheWriteTokens int64           `json:"cacheWriteTokens"`
	ReasoningTokens  int64           `json:"reasoningTokens"`
	TotalTokens      int64           `json:"totalTokens"`
	Cost             json.Number     `json:"costUsd"`
	Pricing          string          `json:"pricing"`
	Metadata         json.RawMessage `json:"metadata"` // accepted, never kept
}

// event converts a decoded stored event and checks it as checkStored
// does; it returns the reason when the event is not acceptable.
func (w *storedEvent) event() (tokenledger.Event, string) {
	e := tokenledger.Event{
		ID: w.ID, Timestamp: w.Timestamp, Model: w.Model, Provider: w.Provider, UserID: w.UserID, SessionID: w.SessionID,
		PromptTokens: w.PromptTokens, CompletionTokens: w.CompletionTokens, CacheReadTokens: w.CacheReadTokens,
		CacheWriteTokens: w.CacheWriteTokens, ReasoningTokens: w.ReasoningTokens, TotalTokens: w.TotalTokens,
	}
	if w.Cost != "" {
		c, err := parseCost(string(w.Cost))
		if err != nil {
			return e, fmt.Sprintf("event %q: costUsd %v", w.ID, err)
		}
		e.Cost = c
	}
	if w.Pricing != "" {
		src, ok := tokenledger.ParsePriceSource(w.Pricing)
		if !ok {
			return e, fmt.Sprintf("event %q: pricing %q is not client, table or unpriced", w.ID, w.Pricing)
		}
		e.Pricing = src
	}
	return e, checkStored(&e)
}

// parseCost converts a JSON number of dollars to nano-dollars exactly. The
// usual form, up to 7 integer digits and 9 decimals, is converted directly;
// anything else goes through tokenledger.ParseDollars.
func parseCost(s string) (tokenledger.Nanos, error) {
	whole, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			whole, frac = s[:i], s[i+1:]
			break
		}
	}
	if len(whole) == 0 || len(whole) > 7 || len(frac) > 9 || (len(whole) > 1 && whole[0] == '0') ||
		!allDigits(whole) || !allDigits(frac) || (len(frac) == 0 && len(whole) != len(s)) {
		return tokenledger.ParseDollars(s)
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
		for range 9 - len(frac) {
			f *= 10
		}
	}
	if n := tokenledger.Nanos(w*tokenledger.NanosPerDollar + f); n <= tokenledger.MaxEventCost {
		return n, nil
	}
	return tokenledger.ParseDollars(s) // says what is wrong
}

// allDigits reports whether s holds only ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendEvent appends the stored form of e to dst: tokenledger.Event's
// JSON without metadata, fields in a fixed order, optional ones left out
// when empty (a file of the version before pricing reads the same).
func appendEvent(dst []byte, e *tokenledger.Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonenc.AppendString(dst, e.ID)
	dst = append(dst, `,"timestamp":"`...)
	dst = e.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","model":`...)
	dst = jsonenc.AppendString(dst, e.Model)
	for _, f := range []struct{ name, v string }{{"provider", e.Provider}, {"userId", e.UserID}, {"sessionId", e.SessionID}} {
		if f.v != "" {
			dst = append(dst, ",\""+f.name+"\":"...)
			dst = jsonenc.AppendString(dst, f.v)
		}
	}
	dst = append(dst, `,"promptTokens":`...)
	dst = strconv.AppendInt(dst, e.PromptTokens, 10)
	dst = append(dst, `,"completionTokens":`...)
	dst = strconv.AppendInt(dst, e.CompletionTokens, 10)
	for _, f := range []struct {
		name string
		v    int64
	}{{"cacheReadTokens", e.CacheReadTokens}, {"cacheWriteTokens", e.CacheWriteTokens}, {"reasoningTokens", e.ReasoningTokens}} {
		if f.v != 0 {
			dst = append(dst, ",\""+f.name+"\":"...)
			dst = strconv.AppendInt(dst, f.v, 10)
		}
	}
	dst = append(dst, `,"totalTokens":`...)
	dst = strconv.AppendInt(dst, e.TotalTokens, 10)
	if e.Cost != 0 {
		dst = append(dst, `,"costUsd":`...)
		dst = append(dst, e.Cost.String()...)
	}
	if e.Pricing != tokenledger.PriceUnknown {
		dst = append(dst, `,"pricing":"`...)
		dst = append(dst, e.Pricing.String()...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}
