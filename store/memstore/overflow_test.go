package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// costEvent returns a valid event of today with the given cost.
func costEvent(id string, now time.Time, cost tokenledger.Nanos) tokenledger.Event {
	return tokenledger.Event{ID: id, Timestamp: now, Model: "m", PromptTokens: 1, TotalTokens: 1, Cost: cost}
}

// TestCounterBoundExact: a day's cost may reach 2^62 − 1 nano-dollars but
// not 2^62; the refusal is an ErrInvalid that names the day and counter,
// covers the whole call (an event of another day included), and events
// already counted add nothing, so resending them near the bound is fine.
func TestCounterBoundExact(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st := memstore.New(nil, 0)
	const fill = 4611
	var evs []tokenledger.Event
	for i := range fill {
		evs = append(evs, costEvent(fmt.Sprintf("f%d", i), now, tokenledger.MaxEventCost))
	}
	rest := tokenledger.Nanos(tokenledger.MaxCounter - 1 - fill*int64(tokenledger.MaxEventCost))
	evs = append(evs, costEvent("last", now, rest))
	if _, err := st.Add(ctx, storetest.Batch(evs)); err != nil {
		t.Fatalf("Add reaching 2^62 − 1: %v", err)
	}

	yesterday := costEvent("other-day", now.Add(-24*time.Hour), 1)
	_, err := st.Add(ctx, storetest.Batch([]tokenledger.Event{yesterday, costEvent("one-more", now, 1)}))
	var oe *tokenledger.CounterOverflowError
	if !errors.As(err, &oe) || !errors.Is(err, tokenledger.ErrInvalid) ||
		oe.Counter != "costUsd" || oe.Date != tokenledger.DateOf(now) {
		t.Fatalf("Add of one nano-dollar more: err = %v, want a CounterOverflowError for costUsd of %s matching ErrInvalid", err, tokenledger.DateOf(now))
	}
	if st.Events() != fill+1 {
		t.Errorf("a refused Add changed the store: %d events, want %d", st.Events(), fill+1)
	}

	res, err := st.Add(ctx, storetest.Batch(evs[:10]))
	if err != nil || res.Accepted() != 0 {
		t.Errorf("resending counted events at the bound: accepted %d, err %v; want 0, nil", res.Accepted(), err)
	}
	// Within one call, an id repeated counts once, for the bound as well.
	st2 := memstore.New(nil, 0)
	if _, err := st2.Add(ctx, storetest.Batch(evs[:fill])); err != nil {
		t.Fatal(err)
	}
	if _, err := st2.Add(ctx, storetest.Batch([]tokenledger.Event{costEvent("x", now, rest), costEvent("x", now, rest)})); err != nil {
		t.Errorf("an id twice in one call, counted once up to 2^62 − 1: %v", err)
	}
	days, _ := st2.Days(ctx, tokenledger.DayQuery{From: tokenledger.DateOf(now), To: tokenledger.DateOf(now)})
	if len(days) != 1 || int64(days[0].Cost) != tokenledger.MaxCounter-1 {
		t.Errorf("days = %+v, want one day at cost 2^62 − 1", days)
	}
}
