package filestore

import (
	"bufio"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenledger/tokenledger"
)

// snapWriter writes our format, one day at a time, one event per line.
type snapWriter struct {
	w      *bufio.Writer
	days   int
	events int
	buf    []byte
}

// begin writes the header.
func (w *snapWriter) begin(updatedAt time.Time, retentionDays int, folded uint64) error {
	_, err := fmt.Fprintf(w.w, "{\n  \"format\": %q,\n  \"version\": %d,\n  \"updatedAt\": %q,\n  \"retentionDays\": %d,\n  \"foldedJournal\": %d,\n  \"days\": [",
		formatName, formatVersion, updatedAt.UTC().Format(time.RFC3339), retentionDays, folded)
	return err
}

// summary is the informational per-day block: the Day without its date.
type summary struct {
	TotalTokens      int64                         `json:"totalTokens"`
	CompletionTokens int64                         `json:"completionTokens"`
	PromptTokens     int64                         `json:"promptTokens"`
	RequestCount     int64                         `json:"requestCount"`
	UniqueUsers      int64                         `json:"uniqueUsers"`
	UniqueSessions   int64                         `json:"uniqueSessions"`
	CacheReadTokens  int64                         `json:"cacheReadTokens"`
	CacheWriteTokens int64                         `json:"cacheWriteTokens"`
	ReasoningTokens  int64                         `json:"reasoningTokens"`
	Cost             tokenledger.Nanos             `json:"costUsd"`
	Models           map[string]tokenledger.Totals `json:"models"`
}

// day writes one day with its summary and events. evs must be non-empty,
// all on date, with distinct ids.
func (w *snapWriter) day(date tokenledger.Date, evs []tokenledger.Event) error {
	d := tokenledger.EmptyDay(date)
	users := map[string]struct{}{}
	sessions := map[string]struct{}{}
	for i := range evs {
		d.AddCounters(&evs[i])
		if evs[i].UserID != "" {
			users[evs[i].UserID] = struct{}{}
		}
		if evs[i].SessionID != "" {
			sessions[evs[i].SessionID] = struct{}{}
		}
	}
	sum, err := json.Marshal(summary{
		TotalTokens: d.TotalTokens, CompletionTokens: d.CompletionTokens, PromptTokens: d.PromptTokens,
		RequestCount: d.RequestCount, UniqueUsers: int64(len(users)), UniqueSessions: int64(len(sessions)),
		CacheReadTokens: d.CacheReadTokens, CacheWriteTokens: d.CacheWriteTokens, ReasoningTokens: d.ReasoningTokens,
		Cost: d.Cost, Models: d.Models,
	})
	if err != nil {
		return fmt.Errorf("encode summary of %s: %w", date, err)
	}
	sep := ""
	if w.days > 0 {
		sep = ","
	}
	w.days++
	if _, err := fmt.Fprintf(w.w, "%s\n    {\n      \"date\": %q,\n      \"summary\": %s,\n      \"events\": [", sep, date, sum); err != nil {
		return err
	}
	for i := range evs {
		b := w.buf[:0]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n        "...)
		b = appendEvent(b, &evs[i])
		w.buf = b
		if _, err := w.w.Write(b); err != nil {
			return err
		}
	}
	w.events += len(evs)
	_, err = w.w.WriteString("\n      ]\n    }")
	return err
}

// end closes the days array and the object.
func (w *snapWriter) end() error {
	s := "\n  ]\n}\n"
	if w.days == 0 {
		s = "]\n}\n"
	}
	_, err := w.w.WriteString(s)
	return err
}
