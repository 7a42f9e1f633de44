// Package storetest is the conformance suite every tokenledger.Store
// passes. A store's test calls it in three lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store { return newStore(t, o) })
//	}
//
// Each clause of the Store contract is one subtest, run against a new,
// empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// Options are passed to the factory for each new store.
type Options struct {
	// Now is the clock the suite runs on (close to the real time, so that
	// backends with real expiry keep the data).
	Now tokenledger.Clock
	// RetentionDays is R.
	RetentionDays int
}

// Factory returns a new store that shares no data with any other store it
// returned. The suite closes it.
type Factory func(t *testing.T, o Options) tokenledger.Store

// Run runs every clause of the contract against stores from newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore Factory)
	}{
		{"ConcurrentWritersExact", testConcurrentExact},
		{"SameIDCountedOnce", testSameIDOnce},
		{"DayBucketingAtMidnight", testDayBucketing},
		{"RetentionEdges", testRetentionEdges},
		{"UniqueUsersAndSessions", testUniqueCounts},
		{"PerModelAndPerUserTotals", testModelAndUserTotals},
		{"CostExact", testCostExact},
		{"PricedCostExact", testPricedCostExact},
		{"CounterOverflowRefused", testCounterOverflowRefused},
		{"Reset", testReset},
		{"Read91Days", testRead91Days},
		{"CancelledContext", testCancelledContext},
		{"Check", testCheck},
		{"ClosedStore", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

// discard drops the Service's log lines.
var discard = slog.New(slog.DiscardHandler)

// suiteNow is the suite's fixed clock: noon UTC of the real current day, so
// that "now − 1 hour" is today, and backends with real expiry (Redis
// EXPIREAT) keep what the suite writes.
func suiteNow() time.Time { return time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour) }

// open makes a store and a Service on it with a fixed clock at now.
func open(t *testing.T, newStore Factory, now time.Time, retention int) (tokenledger.Store, *tokenledger.Service) {
	t.Helper()
	clock := func() time.Time { return now }
	st := newStore(t, Options{Now: clock, RetentionDays: retention})
	t.Cleanup(func() { _ = st.Close() })
	svc, err := tokenledger.NewService(tokenledger.Config{Store: st, Now: clock, RetentionDays: retention, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	return st, svc
}

// ev returns a valid event.
func ev(id string, ts time.Time, model, user, session string, p, c int64) tokenledger.Event {
	return tokenledger.Event{ID: id, Timestamp: ts, Model: model, UserID: user, SessionID: session,
		PromptTokens: p, CompletionTokens: c, TotalTokens: p + c}
}

// readAll returns the store's days in [from, to] keyed by date.
func readAll(t *testing.T, st tokenledger.Store, from, to tokenledger.Date, users bool) map[tokenledger.Date]tokenledger.Day {
	t.Helper()
	days, err := st.Days(context.Background(), tokenledger.DayQuery{From: from, To: to, Users: users})
	if err != nil {
		t.Fatalf("Days: %v", err)
	}
	out := map[tokenledger.Date]tokenledger.Day{}
	for i, d := range days {
		if i > 0 && days[i-1].Date >= d.Date {
			t.Fatalf("Days not in ascending order: %s then %s", days[i-1].Date, d.Date)
		}
		if d.Date < from || d.Date > to {
			t.Fatalf("Days(%s..%s) returned %s", from, to, d.Date)
		}
		if d.RequestCount == 0 {
			continue
		}
		if !users {
			d.Users = nil
		}
		out[d.Date] = d
	}
	return out
}

// expect computes the days a store must return for events, independently
// of any store: the first event with a given (day, id) counts.
func expect(events []tokenledger.Event, users bool) map[tokenledger.Date]tokenledger.Day {
	type key struct {
		d  tokenledger.Date
		id string
	}
	seen := map[key]bool{}
	out := map[tokenledger.Date]tokenledger.Day{}
	userSets := map[tokenledger.Date]map[string]bool{}
	sessSets := map[tokenledger.Date]map[string]bool{}
	for i := range events {
		e := events[i]
		k := key{e.Day(), e.ID}
		if seen[k] {
			continue
		}
		seen[k] = true
		d, ok := out[k.d]
		if !ok {
			d = tokenledger.EmptyDay(k.d)
			if users {
				d.Users = map[string]tokenledger.Totals{}
			}
			userSets[k.d] = map[string]bool{}
			sessSets[k.d] = map[string]bool{}
		}
		d.TotalTokens += e.TotalTokens
		d.PromptTokens += e.PromptTokens
		d.CompletionTokens += e.CompletionTokens
		d.CacheReadTokens += e.CacheReadTokens
		d.CacheWriteTokens += e.CacheWriteTokens
		d.ReasoningTokens += e.ReasoningTokens
		d.RequestCount++
		d.Cost += e.Cost
		d.Pricing.Count(e.Pricing)
		m := d.Models[e.Model]
		m.PromptTokens += e.PromptTokens
		m.CompletionTokens += e.CompletionTokens
		m.TotalTokens += e.TotalTokens
		m.RequestCount++
		m.Cost += e.Cost
		m.Pricing.Count(e.Pricing)
		d.Models[e.Model] = m
		if e.UserID != "" {
			userSets[k.d][e.UserID] = true
			if users {
				u := d.Users[e.UserID]
				u.AddEvent(&e)
				d.Users[e.UserID] = u
			}
		}
		if e.SessionID != "" {
			sessSets[k.d][e.SessionID] = true
		}
		d.UniqueUsers = int64(len(userSets[k.d]))
		d.UniqueSessions = int64(len(sessSets[k.d]))
		out[k.d] = d
	}
	return out
}

// sameDays fails the test when got and want differ, naming the first
// difference.
func sameDays(t *testing.T, got, want map[tokenledger.Date]tokenledger.Day) {
	t.Helper()
	var dates []string
	for d := range want {
		dates = append(dates, string(d))
	}
	for d := range got {
		if _, ok := want[d]; !ok {
			t.Errorf("store returned day %s that should hold nothing: %+v", d, got[d])
		}
	}
	sort.Strings(dates)
	for _, ds := range dates {
		d := tokenledger.Date(ds)
		g, w := got[d], want[d]
		if g.Users == nil && len(w.Users) == 0 {
			w.Users = g.Users
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("day %s:\n got  %+v\n want %+v", d, g, w)
		}
	}
}

// testConcurrentExact: 64 goroutines × 250 events, some in batches, with
// re-sent ids, across three days; every counter must be exact.
func testConcurrentExact(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	const workers, perWorker = 64, 250
	all := make([][]tokenledger.Event, workers)
	for w := range workers {
		evs := make([]tokenledger.Event, perWorker)
		for i := range perWorker {
			n := w*perWorker + i
			ts := now.Add(-time.Duration(n%3) * 24 * time.Hour)
			evs[i] = ev(fmt.Sprintf("c-%d-%d", w, i), ts,
				fmt.Sprintf("model-%d", n%7), fmt.Sprintf("user-%d", n%101), fmt.Sprintf("sess-%d", n%257),
				int64(n%1000), int64(n%333))
			evs[i].CacheReadTokens = int64(n % 10)
			evs[i].ReasoningTokens = min(int64(n%5), evs[i].CompletionTokens) // valid: a subset of completionTokens
			evs[i].Cost = tokenledger.Nanos(n*1_001 + 7)
		}
		all[w] = evs
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs := all[w]
			for i := 0; i < len(evs); {
				n := 1
				if w%4 == 0 { // a quarter of the workers send batches of 10
					n = min(10, len(evs)-i)
				}
				if _, err := st.Add(context.Background(), Batch(evs[i:i+n])); err != nil {
					errs <- err
					return
				}
				// Every 50th event is sent again: it must not count twice.
				if (i/n)%50 == 0 {
					res, err := st.Add(context.Background(), Batch(evs[i:i+1]))
					if err != nil {
						errs <- err
						return
					}
					if res.Accepted() != 0 {
						errs <- fmt.Errorf("re-sent event %s was counted again", evs[i].ID)
						return
					}
				}
				i += n
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var flat []tokenledger.Event
	for _, evs := range all {
		flat = append(flat, evs...)
	}
	today := tokenledger.DateOf(now)
	got := readAll(t, st, today.AddDays(-2), today, true)
	want := expect(flat, true)
	sameDays(t, got, want)
	var requests int64
	for _, d := range got {
		requests += d.RequestCount
	}
	if requests != workers*perWorker {
		t.Errorf("requestCount over all days = %d, want %d", requests, workers*perWorker)
	}
}

// testSameIDOnce: the same id is counted once, whether sent again later,
// twice in one batch, or by 16 goroutines at once.
func testSameIDOnce(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	ctx := context.Background()
	e := ev("dup-1", now, "gpt-4o", "u1", "s1", 100, 50)

	res, err := st.Add(ctx, Batch([]tokenledger.Event{e}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.New, []bool{true}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first Add New = %v, want %v", got, want)
	}
	res, err = st.Add(ctx, Batch([]tokenledger.Event{e}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.New, []bool{false}; !reflect.DeepEqual(got, want) {
		t.Fatalf("second Add New = %v, want %v", got, want)
	}

	// Twice in one batch, around a new event.
	e2 := ev("dup-2", now, "gpt-4o", "u2", "s2", 10, 5)
	res, err = st.Add(ctx, Batch([]tokenledger.Event{e2, e, e2}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.New, []bool{true, false, false}; !reflect.DeepEqual(got, want) {
		t.Fatalf("batch Add New = %v, want %v", got, want)
	}

	// Twice in a large batch, far apart (a store may split a batch into
	// parts, as the Redis stores do past 256 events of a day): new once.
	big := make([]tokenledger.Event, 600)
	for i := range big {
		big[i] = ev(fmt.Sprintf("dup-big-%d", i), now, "gpt-4o", "u4", "s4", 1, 1)
	}
	big[590].ID = big[3].ID
	res, err = st.Add(ctx, Batch(big))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted() != 599 || !res.New[3] || res.New[590] {
		t.Fatalf("a 600-event batch with one id twice: accepted %d, New[3] %v, New[590] %v; want 599, true, false", res.Accepted(), res.New[3], res.New[590])
	}

	// Sixteen goroutines race to add the same new event: exactly one wins.
	e3 := ev("dup-3", now, "claude", "u3", "s3", 7, 3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := st.Add(ctx, Batch([]tokenledger.Event{e3}))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			wins += r.Accepted()
			mu.Unlock()
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("16 concurrent adds of one id counted %d times, want 1", wins)
	}

	today := tokenledger.DateOf(now)
	got := readAll(t, st, today, today, false)
	sameDays(t, got, expect(append([]tokenledger.Event{e, e2, e3}, append(big[:590:590], big[591:]...)...), false))

	// An id is unique within its UTC day: the same id on another day is
	// another event (documented in docs/api.md).
	y := e
	y.Timestamp = now.Add(-24 * time.Hour)
	res, err = st.Add(ctx, Batch([]tokenledger.Event{y}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted() != 1 {
		t.Errorf("same id on the previous day: accepted %d, want 1", res.Accepted())
	}
}

// testDayBucketing: 23:59:59.999 belongs to its day, 00:00:00 to the next,
// and a timestamp with an offset counts for its UTC date.
func testDayBucketing(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	today := tokenledger.DateOf(now)
	midnight := today.Time()
	late := midnight.Add(-time.Millisecond) // yesterday 23:59:59.999
	east := time.FixedZone("UTC+2", 2*3600)
	evs := []tokenledger.Event{
		ev("b-1", late, "m", "u1", "s1", 1, 0),
		ev("b-2", midnight, "m", "u2", "s2", 2, 0),
		// 01:30 at UTC+2 today is 23:30 UTC yesterday.
		ev("b-3", midnight.Add(90*time.Minute).In(east).Add(-2*time.Hour), "m", "u3", "s3", 4, 0),
	}
	if _, err := st.Add(context.Background(), Batch(evs)); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, st, today.AddDays(-1), today, false)
	if y := got[today.AddDays(-1)]; y.PromptTokens != 5 || y.RequestCount != 2 {
		t.Errorf("yesterday: prompt %d requests %d, want 5 and 2", y.PromptTokens, y.RequestCount)
	}
	if d := got[today]; d.PromptTokens != 2 || d.RequestCount != 1 {
		t.Errorf("today: prompt %d requests %d, want 2 and 1", d.PromptTokens, d.RequestCount)
	}
	sameDays(t, got, expect(evs, false))
}

// testRetentionEdges: with R days, today − R is kept and today − R − 1 is
// refused; when the clock moves one day on, the oldest day leaves every
// report.
func testRetentionEdges(t *testing.T, newStore Factory) {
	const R = 30
	now := suiteNow()
	st, svc := open(t, newStore, now, R)
	ctx := context.Background()
	today := tokenledger.DateOf(now)
	oldest := today.AddDays(-R)

	if _, err := svc.Log(ctx, []tokenledger.Event{ev("r-old", oldest.Time(), "m", "u", "s", 10, 0)}); err != nil {
		t.Fatalf("event on today − R (%s) refused: %v", oldest, err)
	}
	if _, err := svc.Log(ctx, []tokenledger.Event{ev("r-now", now, "m", "u", "s", 1, 0)}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Log(ctx, []tokenledger.Event{ev("r-too-old", oldest.Time().Add(-time.Millisecond), "m", "u", "s", 1, 0)})
	if !errors.Is(err, tokenledger.ErrInvalid) {
		t.Fatalf("event on today − R − 1: err = %v, want ErrInvalid", err)
	}
	_, err = svc.Log(ctx, []tokenledger.Event{ev("r-future", now.Add(6*time.Minute), "m", "u", "s", 1, 0)})
	if !errors.Is(err, tokenledger.ErrInvalid) {
		t.Fatalf("event 6 minutes ahead: err = %v, want ErrInvalid", err)
	}
	if _, err := svc.Log(ctx, []tokenledger.Event{ev("r-soon", now.Add(4*time.Minute), "m", "u", "s", 100, 0)}); err != nil {
		t.Fatalf("event 4 minutes ahead refused: %v", err)
	}
	stats, err := svc.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.TotalTokensAllTime != 111 || stats.DaysTracked != 2 || stats.FirstDate == nil || *stats.FirstDate != oldest {
		t.Errorf("stats = %+v, want 111 tokens over 2 days from %s", stats, oldest)
	}
	hist, err := svc.History(ctx, R+1)
	if err != nil {
		t.Fatal(err)
	}
	if hist[0].Date != oldest || hist[0].TotalTokens != 10 {
		t.Errorf("history[0] = %s with %d tokens, want %s with 10", hist[0].Date, hist[0].TotalTokens, oldest)
	}
	if err := svc.CheckDays(R + 2); err == nil {
		t.Errorf("days = R + 2 accepted")
	}

	// One day later the oldest day is outside the window.
	later := now.Add(24 * time.Hour)
	svc2, err := tokenledger.NewService(tokenledger.Config{Store: st, Now: func() time.Time { return later }, RetentionDays: R, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	stats, err = svc2.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.TotalTokensAllTime != 101 || stats.DaysTracked != 1 {
		t.Errorf("a day later stats = %+v, want 101 tokens over 1 day", stats)
	}
	if d, err := svc2.DateUsage(ctx, oldest); err != nil || d != nil {
		t.Errorf("a day later DateUsage(%s) = %v, %v; want nil, nil", oldest, d, err)
	}
}

// testUniqueCounts: unique users and sessions are exact, ignore events
// without them, and count a user once across models.
func testUniqueCounts(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, _ := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	var evs []tokenledger.Event
	for i := range 3000 {
		user, sess := fmt.Sprintf("user-%d", i%1000), fmt.Sprintf("sess-%d", i%1500)
		if i%10 == 0 {
			user, sess = "", ""
		}
		evs = append(evs, ev(fmt.Sprintf("u-%d", i), now, fmt.Sprintf("m%d", i%3), user, sess, 1, 1))
	}
	for i := 0; i < len(evs); i += 500 {
		if _, err := st.Add(context.Background(), Batch(evs[i:i+500])); err != nil {
			t.Fatal(err)
		}
	}
	today := tokenledger.DateOf(now)
	got := readAll(t, st, today, today, false)[today]
	// Users i%1000 for i not divisible by 10: i%1000 ranges over values not
	// ≡ 0 mod 10 → 900; sessions i%1500 likewise → 1350.
	if got.UniqueUsers != 900 || got.UniqueSessions != 1350 || got.RequestCount != 3000 {
		t.Errorf("uniqueUsers %d uniqueSessions %d requests %d, want 900, 1350, 3000", got.UniqueUsers, got.UniqueSessions, got.RequestCount)
	}
}

// testModelAndUserTotals: per-model and per-user totals, including the
// reports built from them.
func testModelAndUserTotals(t *testing.T, newStore Factory) {
	now := suiteNow()
	st, svc := open(t, newStore, now, tokenledger.DefaultRetentionDays)
	ctx := context.Background()
	evs := []tokenledger.Event{
		ev("", now, "gpt-4o", "alice", "s1", 100, 20),
		ev("", now.Add(-time.Hour), "gpt-4o", "bob", "s2", 50, 5),
		ev("", now.Add(-48*time.Hour), "claude|sonnet", "alice", "s3", 500, 100),
		ev("", now, "model with spaces: ünïcode", "user|with|bars", "s4", 1, 2),
	}
	evs[0].Cost = 1_500_000
	if _, err := svc.Log(ctx, evs); err != nil {
		t.Fatal(err)
	}
	today := tokenledger.DateOf(now)
	sameDays(t, readAll(t, st, today.AddDays(-2), today, true), expect(evs, true))

	users, err := svc.Users(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []tokenledger.UserTotals{
		{UserID: "alice", Totals: tokenledger.Totals{PromptTokens: 600, CompletionTokens: 120, TotalTokens: 720, RequestCount: 2, Cost: 1_500_000,
			Pricing: tokenledger.PricingCounts{Client: 1, Unpriced: 1}}},
		{UserID: "bob", Totals: tokenledger.Totals{PromptTokens: 50, CompletionTokens: 5, TotalTokens: 55, RequestCount: 1,
			Pricing: tokenledger.PricingCounts{Unpriced: 1}}},
		{UserID: "user|with|bars", Totals: tokenledger.Totals{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, RequestCount: 1,
			Pricing: tokenledger.PricingCounts{Unpriced: 1}}},
	}
	if !reflect.DeepEqual(users, want) {
		t.Errorf("users report:\n got  %+v\n want %+v", users, want)
	}
	models, err := svc.Models(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 2 || models[0].Model != "gpt-4o" || models[0].TotalTokens != 175 || models[0].RequestCount != 2 {
		t.Errorf("models report over 1 day = %+v", models)
	}
}

// Batch returns events as a tokenledger.Batch for a test to hand to a
// store directly, checked as stored events are (tokenledger.StoredBatch).
// It panics on an event that breaks a rule: the test is wrong.
func Batch(events []tokenledger.Event) tokenledger.Batch {
	b, err := tokenledger.StoredBatch(events)
	if err != nil {
		panic("storetest.Batch: " + err.Error())
	}
	return b
}
