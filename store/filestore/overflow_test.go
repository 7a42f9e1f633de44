package filestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestCounterOverflowGroup: Adds that share a journal write are judged one
// by one: the one that would take the day's cost to 2^62 is refused with
// ErrInvalid and is not in the journal, while those beside it are counted
// and durable.
func TestCounterOverflowGroup(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	const fill = 4611
	evs := make([]tokenledger.Event, fill)
	for i := range evs {
		evs[i] = tokenledger.Event{ID: fmt.Sprintf("f%d", i), Timestamp: fixedNow, Model: "m", TotalTokens: 1, PromptTokens: 1, Cost: tokenledger.MaxEventCost}
	}
	if _, err := s.Add(ctx, storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	const small = 32
	errs := make([]error, small+1)
	var wg sync.WaitGroup
	for i := range small + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := tokenledger.Event{ID: fmt.Sprintf("s%d", i), Timestamp: fixedNow, Model: "m2", TotalTokens: 1, PromptTokens: 1, Cost: tokenledger.NanosPerDollar}
			if i == small {
				e.ID, e.Cost = "big", tokenledger.MaxEventCost
			}
			_, errs[i] = s.Add(ctx, storetest.Batch([]tokenledger.Event{e}))
		}()
	}
	wg.Wait()
	for i, err := range errs[:small] {
		if err != nil {
			t.Errorf("small Add %d beside the refused one: %v", i, err)
		}
	}
	if err := errs[small]; !errors.Is(err, tokenledger.ErrInvalid) {
		t.Errorf("Add taking the cost past 2^62: err = %v, want ErrInvalid (overflow)", err)
	}
	want := tokenledger.Nanos(fill)*tokenledger.MaxEventCost + small*tokenledger.NanosPerDollar
	check := func(what string, st tokenledger.Store) {
		t.Helper()
		days := allDays(t, st, fixedNow, tokenledger.DefaultRetentionDays)
		var got tokenledger.Day
		for _, d := range days {
			if d.RequestCount > 0 {
				got = d
			}
		}
		if got.Cost != want || got.RequestCount != fill+small {
			t.Errorf("%s: cost %s, requests %d; want %s, %d", what, got.Cost, got.RequestCount, want, fill+small)
		}
	}
	check("open", s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, path, Options{})
	defer r.Close()
	check("reopened", r)
}
