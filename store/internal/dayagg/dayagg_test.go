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

// Sealing packs the ids without changing what is counted, and a Set
// restored from the export plus the sealed ids answers as the original.
func TestSealExportRestore(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s := New()
	for i, id := range []string{"a", "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", "c"} {
		e := tokenledger.Event{ID: id, Timestamp: now, Model: "m", UserID: "u", SessionID: "s" + id, PromptTokens: int64(i + 1), TotalTokens: int64(i + 1)}
		s.Apply(&e)
	}
	sealed := s.Seal()
	again := tokenledger.Event{ID: "a", Timestamp: now, Model: "m", PromptTokens: 50, TotalTokens: 50}
	if s.Apply(&again) || s.Events() != 3 {
		t.Fatalf("a sealed id counted again (%d events)", s.Events())
	}
	r := New()
	for _, st := range s.Export() {
		r.Restore(st)
	}
	for date, ids := range sealed {
		r.AddSealed(date, ids)
	}
	today := tokenledger.DateOf(now)
	q := tokenledger.DayQuery{From: today, To: today, Users: true}
	got, want := r.Days(q), s.Days(q)
	if len(got) != 1 || got[0].PromptTokens != want[0].PromptTokens || got[0].UniqueSessions != 3 || got[0].Users["u"] != want[0].Users["u"] || !r.Has(today, "c") || r.Events() != 3 {
		t.Fatalf("restored %+v; want %+v", got, want)
	}
}

// ExportChanged returns the days that counted an event since the last
// ClearChanged, plus those its argument asks for; a repeated id or a
// restored day is no change.
func TestExportChanged(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s := New()
	ev := func(id string, daysAgo int) *tokenledger.Event {
		return &tokenledger.Event{ID: id, Timestamp: now.AddDate(0, 0, -daysAgo), Model: "m", TotalTokens: 1}
	}
	s.Apply(ev("a", 0))
	s.Apply(ev("b", 1))
	s.Apply(ev("c", 2))
	none := func(tokenledger.Date) bool { return false }
	if got := s.ExportChanged(none); len(got) != 3 {
		t.Fatalf("%d days changed, want 3", len(got))
	}
	s.ClearChanged()
	s.Apply(ev("b", 1)) // counted already: no change
	s.Apply(ev("d", 2))
	r := New()
	for _, st := range s.Export() {
		r.Restore(st)
	}
	got := s.ExportChanged(none)
	if len(got) != 1 || got[0].Day.Date != tokenledger.DateOf(now.AddDate(0, 0, -2)) || got[0].Day.RequestCount != 2 {
		t.Fatalf("changed %+v; want the day two days ago with 2 requests", got)
	}
	today := tokenledger.DateOf(now)
	if got := r.ExportChanged(func(d tokenledger.Date) bool { return d == today }); len(got) != 1 || got[0].Day.Date != today {
		t.Fatalf("restored set: changed %+v; want only the day asked for", got)
	}
}
