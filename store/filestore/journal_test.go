package filestore

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// TestJournalLineFormat: a journal line is byte for byte the example of
// docs/file-format.md, so journals written before keep loading.
func TestJournalLineFormat(t *testing.T) {
	const want = `120c1d38 [{"id":"e3","timestamp":"2026-11-27T09:30:00Z","model":"gpt-4o","promptTokens":12,"completionTokens":3,"totalTokens":15}]` + "\n"
	e := tokenledger.Event{ID: "e3", Timestamp: time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC), Model: "gpt-4o", PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15}
	if got := string(appendJournalLine(nil, []tokenledger.Event{e})); got != want {
		t.Errorf("journal line\n got %q\nwant %q", got, want)
	}
	evs, err := readAll(want)
	if err != nil || len(evs) != 1 || !reflect.DeepEqual(evs[0], e) {
		t.Errorf("reading the example: %+v, %v", evs, err)
	}
}

// TestLargestLineFitsOneRecord: a line of maxLineEvents events, each as
// large as the rules allow, stays within journal.MaxRecord, so the
// committer never writes a line that reads back as damaged.
func TestLargestLineFitsOneRecord(t *testing.T) {
	name := strings.Repeat("\U0001F600", tokenledger.MaxNameLength) // 4 bytes each
	e := tokenledger.Event{
		ID:        strings.Repeat(`"`, tokenledger.MaxIDLength), // escaped: 2 bytes each
		Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		Model:     name, Provider: name, UserID: name, SessionID: name,
		PromptTokens: tokenledger.MaxTokens / 2, CompletionTokens: tokenledger.MaxTokens / 2,
		CacheReadTokens: tokenledger.MaxTokens / 4, CacheWriteTokens: tokenledger.MaxTokens / 4,
		ReasoningTokens: tokenledger.MaxTokens / 2, TotalTokens: tokenledger.MaxTokens,
		Cost: tokenledger.MaxEventCost,
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("the largest event is not valid: %v", err)
	}
	evs := make([]tokenledger.Event, maxLineEvents)
	for i := range evs {
		evs[i] = e
	}
	if n := len(appendBatch(nil, evs)); n > journal.MaxRecord {
		t.Errorf("a line of %d of the largest events holds %d bytes, more than journal.MaxRecord (%d)", maxLineEvents, n, journal.MaxRecord)
	}
}

// readAll reads one journal's content with readJournal.
func readAll(content string) ([]tokenledger.Event, error) {
	var out []tokenledger.Event
	_, err := readJournal("j", strings.NewReader(content), true, func(evs []tokenledger.Event) error {
		out = append(out, evs...)
		return nil
	})
	return out, err
}
