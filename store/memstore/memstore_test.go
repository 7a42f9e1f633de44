package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store {
		return memstore.New(o.Now, o.RetentionDays)
	})
}

// AddChecked counts like Add: each id once within its day, whether it
// repeats within the call or was counted before.
func TestAddChecked(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s := memstore.New(func() time.Time { return now }, tokenledger.DefaultRetentionDays)
	ev := func(id string, p int64) tokenledger.Event {
		return tokenledger.Event{ID: id, Timestamp: now, Model: "m", UserID: "u", PromptTokens: p, TotalTokens: p}
	}
	s.AddChecked([]tokenledger.Event{ev("a", 1), ev("b", 10), ev("a", 100)})
	s.AddChecked([]tokenledger.Event{ev("b", 1000), ev("c", 10000)})
	days, err := s.Days(context.Background(), tokenledger.DayQuery{From: tokenledger.DateOf(now), To: tokenledger.DateOf(now), Users: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 1 || days[0].RequestCount != 3 || days[0].PromptTokens != 10011 || days[0].Users["u"].RequestCount != 3 {
		t.Fatalf("days %+v; want one day of 3 requests, 10011 prompt tokens, all by u", days)
	}
}
