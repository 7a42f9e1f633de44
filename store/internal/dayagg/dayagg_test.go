package dayagg

import (
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// Apply counts each id once within its day, whether it repeats within a
// batch or was counted before, and not across days.
func TestApplyOncePerDay(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ev := func(id string, p int64, at time.Time) tokenledger.Event {
		return tokenledger.Event{ID: id, Timestamp: at, Model: "m", UserID: "u", PromptTokens: p, TotalTokens: p}
	}
	s := New()
	var counted []bool
	for _, e := range []tokenledger.Event{ev("a", 1, now), ev("b", 10, now), ev("a", 100, now), ev("b", 1000, now), ev("c", 10000, now), ev("a", 5, now.AddDate(0, 0, -1))} {
		counted = append(counted, s.Apply(&e))
	}
	want := []bool{true, true, false, false, true, true}
	for i := range want {
		if counted[i] != want[i] {
			t.Fatalf("Apply reported %v; want %v", counted, want)
		}
	}
	today := tokenledger.DateOf(now)
	days := s.Days(tokenledger.DayQuery{From: today.AddDays(-1), To: today, Users: true})
	if len(days) != 2 || days[1].RequestCount != 3 || days[1].PromptTokens != 10011 || days[1].Users["u"].RequestCount != 3 || days[0].PromptTokens != 5 {
		t.Fatalf("days %+v; want yesterday 5 tokens, today 3 requests of 10011 tokens, all by u", days)
	}
	if !s.Has(today, "c") || s.Has(today.AddDays(-1), "c") || s.Events() != 4 {
		t.Fatalf("Has/Events disagree with what was applied: %d events", s.Events())
	}
	if n := s.Prune(today); n != 1 || s.Events() != 3 {
		t.Fatalf("Prune(today) dropped %d days leaving %d events; want 1 day, 3 events", n, s.Events())
	}
}

// CheckRoom refuses a batch that would take a day's counter to MaxCounter
// and counts a repeated id once when checking.
func TestCheckRoom(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	big := tokenledger.Event{ID: "x", Timestamp: now, Model: "m", PromptTokens: tokenledger.MaxCounter / 2, TotalTokens: tokenledger.MaxCounter / 2}
	s := New()
	if err := s.CheckRoom([]tokenledger.Event{big, big}); err != nil {
		t.Fatalf("the same id twice is counted once: %v", err)
	}
	other := big
	other.ID = "y"
	if err := s.CheckRoom([]tokenledger.Event{big, other}); err == nil {
		t.Fatal("two halves of MaxCounter fit; want an overflow error")
	}
	s.Apply(&big)
	if err := s.CheckRoom([]tokenledger.Event{big}); err != nil {
		t.Fatalf("a counted id adds nothing: %v", err)
	}
}
