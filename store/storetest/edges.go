package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// testCostExact: a million nano-dollar amounts add up without drift.
func testCostExact(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	var evs []tokenledger.Event
	var want tokenledger.Nanos
	for i := range 1000 {
		e := ev(fmt.Sprintf("cost-%d", i), now, "m", "", "", 1, 1)
		e.Cost = tokenledger.Nanos(100_000_001 + i) // ≈ $0.1 plus a nano-dollar tail
		want += e.Cost
		evs = append(evs, e)
	}
	if _, err := st.Add(context.Background(), Batch(evs)); err != nil {
		t.Fatal(err)
	}
	today := tokenledger.DateOf(now)
	d := readAll(t, st, today, today, false)[today]
	if d.Cost != want || d.Models["m"].Cost != want {
		t.Errorf("cost = %s (model %s), want %s", d.Cost, d.Models["m"].Cost, want)
	}
}

// testCounterOverflowRefused: an Add that would take a counter of a day to
// 2^62 (tokenledger.MaxCounter) fails with an error that says so and
// stores nothing of the call, not even its events that fit; one that stays
// below is counted exactly. The cost is the counter a client can fill: 4,612
// events at the per-event maximum of $1,000,000 pass 2^62 nano-dollars.
func testCounterOverflowRefused(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	ctx := context.Background()
	today := tokenledger.DateOf(now)
	const fill = 4611 // 4.611e18 nano-dollars, 2^62 is about 4.6117e18
	var evs []tokenledger.Event
	for i := range fill {
		e := ev(fmt.Sprintf("fill-%d", i), now, "m", "u", "s", 1, 1)
		e.Cost = tokenledger.MaxEventCost
		evs = append(evs, e)
	}
	if _, err := st.Add(ctx, Batch(evs)); err != nil {
		t.Fatalf("Add of %d events at the maximum cost (below 2^62 in all): %v", fill, err)
	}
	before := readAll(t, st, today, today, true)[today]
	wantCost := tokenledger.Nanos(fill) * tokenledger.MaxEventCost
	if before.Cost != wantCost || before.RequestCount != fill {
		t.Fatalf("after the fill: cost %s, requests %d; want %s, %d", before.Cost, before.RequestCount, wantCost, fill)
	}

	small := ev("small", now, "m2", "u2", "s2", 5, 5)
	small.Cost = tokenledger.NanosPerDollar
	big := ev("big", now, "m", "u", "s", 1, 1)
	big.Cost = tokenledger.MaxEventCost
	_, err := st.Add(ctx, Batch([]tokenledger.Event{small, big}))
	if err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Fatalf("Add taking the day's cost past 2^62: err = %v, want an overflow error", err)
	}
	after := readAll(t, st, today, today, true)[today]
	if !reflect.DeepEqual(after, before) {
		t.Errorf("a refused Add changed the day:\nbefore %+v\nafter  %+v", before, after)
	}

	// Nothing of the refused call was claimed: its event that fits counts
	// when sent alone, and one of $600,000 still fits below 2^62.
	near := ev("near", now, "m", "u", "s", 1, 1)
	near.Cost = 600_000 * tokenledger.NanosPerDollar
	res, err := st.Add(ctx, Batch([]tokenledger.Event{small, near}))
	if err != nil || res.Accepted() != 2 {
		t.Fatalf("Add after the refusal: accepted %d, err %v; want 2, nil", res.Accepted(), err)
	}
	d := readAll(t, st, today, today, false)[today]
	if want := wantCost + small.Cost + near.Cost; d.Cost != want || d.RequestCount != fill+2 || d.Cost < 0 {
		t.Errorf("after the last Add: cost %s, requests %d; want %s, %d", d.Cost, d.RequestCount, want, fill+2)
	}
}

// testReset: Reset removes every day; the store keeps working afterwards.
func testReset(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	ctx := context.Background()
	today := tokenledger.DateOf(now)
	e := ev("reset-1", now, "m", "u", "s", 5, 5)
	if _, err := st.Add(ctx, Batch([]tokenledger.Event{e, ev("reset-2", now.Add(-72*time.Hour), "m", "u", "s", 1, 1)})); err != nil {
		t.Fatal(err)
	}
	if err := st.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, st, today.AddDays(-90), today, true); len(got) != 0 {
		t.Fatalf("after Reset the store still holds %d days", len(got))
	}
	// After a reset the same id is new again: the data, ids included, is gone.
	res, err := st.Add(ctx, Batch([]tokenledger.Event{e}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted() != 1 {
		t.Errorf("after Reset re-adding an event accepted %d, want 1", res.Accepted())
	}
	sameDays(t, readAll(t, st, today, today, false), expect([]tokenledger.Event{e}, false))
}

// testRead91Days: a usage event on each of 91 days reads back in one call.
func testRead91Days(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, svc := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	ctx := context.Background()
	today := tokenledger.DateOf(now)
	var evs []tokenledger.Event
	for i := range 91 {
		d := today.AddDays(-i)
		for j := range 3 {
			evs = append(evs, ev(fmt.Sprintf("d%d-%d", i, j), d.Time().Add(time.Duration(j)*time.Hour), fmt.Sprintf("m%d", j), fmt.Sprintf("u%d", i), "", int64(i+1), int64(j)))
		}
	}
	if _, err := st.Add(ctx, Batch(evs)); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, st, today.AddDays(-90), today, false)
	if len(got) != 91 {
		t.Fatalf("read %d days, want 91", len(got))
	}
	sameDays(t, got, expect(evs, false))
	all, err := svc.All(ctx, 91)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.History) != 91 || all.History[90].Date != today || all.Stats.DaysTracked != 91 || all.TodayUsage == nil {
		t.Errorf("All(91): %d days, last %s, %d tracked", len(all.History), all.History[len(all.History)-1].Date, all.Stats.DaysTracked)
	}
}

// testCancelledContext: every method given an ended context returns an
// error promptly and does not count the events.
func testCancelledContext(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	today := tokenledger.DateOf(now)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := st.Add(ctx, Batch([]tokenledger.Event{ev("cx-1", now, "m", "", "", 1, 1)})); !errors.Is(err, context.Canceled) {
			t.Errorf("Add with a cancelled context: err = %v, want context.Canceled", err)
		}
		if _, err := st.Days(ctx, tokenledger.DayQuery{From: today, To: today}); !errors.Is(err, context.Canceled) {
			t.Errorf("Days with a cancelled context: err = %v, want context.Canceled", err)
		}
		if err := st.Reset(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Reset with a cancelled context: err = %v, want context.Canceled", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a method with a cancelled context did not return within 10 s")
	}
	if got := readAll(t, st, today, today, false); len(got) != 0 {
		t.Errorf("an Add with a cancelled context stored %+v", got)
	}
}

// testCheck: Check succeeds on a working store and leaves no usage behind.
func testCheck(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	if err := st.Check(context.Background()); err != nil {
		t.Fatalf("Check on a working store: %v", err)
	}
	today := tokenledger.DateOf(now)
	if got := readAll(t, st, today.AddDays(-90), today.AddDays(1), true); len(got) != 0 {
		t.Errorf("Check left usage behind: %+v", got)
	}
}

// testClosed: after Close, every method returns ErrClosed.
func testClosed(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	today := tokenledger.DateOf(now)
	if _, err := st.Add(ctx, Batch([]tokenledger.Event{ev("closed-1", now, "m", "", "", 1, 1)})); !errors.Is(err, tokenledger.ErrClosed) {
		t.Errorf("Add after Close: err = %v, want ErrClosed", err)
	}
	if _, err := st.Days(ctx, tokenledger.DayQuery{From: today, To: today}); !errors.Is(err, tokenledger.ErrClosed) {
		t.Errorf("Days after Close: err = %v, want ErrClosed", err)
	}
	if err := st.Reset(ctx); !errors.Is(err, tokenledger.ErrClosed) {
		t.Errorf("Reset after Close: err = %v, want ErrClosed", err)
	}
	if err := st.Check(ctx); !errors.Is(err, tokenledger.ErrClosed) {
		t.Errorf("Check after Close: err = %v, want ErrClosed", err)
	}
}
