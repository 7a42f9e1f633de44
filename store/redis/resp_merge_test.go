package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// flushers is the combiner's number of flushers (transport.go).
const flushers = 4

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// addResult is what one concurrent caller got.
type addResult struct {
	res tokenledger.AddResult
	err error
}

// stalled pauses srv and occupies every flusher of s with a call of its
// own (events "<p>-block-<i>"), each of which waits in its flusher for
// the paused server. Calls made afterwards wait in the queue until the
// server is resumed; resume returns the blocking calls' results.
func stalled(t *testing.T, srv *redistest.Instance, s *redis.Store, p string) (resume func() []addResult) {
	t.Helper()
	srv.Pause(t)
	paused := true
	t.Cleanup(func() {
		if paused {
			srv.Resume(t)
		}
	})
	out := make([]addResult, flushers)
	var wg sync.WaitGroup
	for i := range flushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].res, out[i].err = s.Add(context.Background(), storetest.Batch([]tokenledger.Event{event(fmt.Sprintf("%s-block-%d", p, i), noon(), "m", "u", "s", 1, 1)}))
		}()
		// Taken by an idle flusher, which sends it and waits.
		waitFor(t, "a flusher takes the blocking call", func() bool { return redis.Queued(s) == 0 })
		srv.WaitUnread(t, i+1, 5*time.Second) // and has sent it
	}
	return func() []addResult {
		srv.Resume(t)
		paused = false
		wg.Wait()
		return out
	}
}

// TestConcurrentAddsAreMerged: 64 concurrent single-event Adds of one day
// that wait together are sent as far fewer script calls than 64, each
// caller gets its own answer, and every event counts exactly once.
func TestConcurrentAddsAreMerged(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	ctx := context.Background()
	now := noon()
	const callers = 64
	sha0 := commandCalls(t, c, "evalsha")
	resume := stalled(t, srv, s, "mg")
	results := make([]addResult, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := event(fmt.Sprintf("mg-%d", i), now, fmt.Sprintf("m%d", i%3), fmt.Sprintf("u%d", i%10), fmt.Sprintf("s%d", i%4), int64(i+1), 2)
			e.Cost = tokenledger.Nanos(1000 * i)
			results[i].res, results[i].err = s.Add(ctx, storetest.Batch([]tokenledger.Event{e}))
		}()
	}
	waitFor(t, "all callers wait in the queue", func() bool { return redis.Queued(s) == callers })
	for _, r := range resume() {
		if r.err != nil || !r.res.New[0] {
			t.Fatalf("a blocking call: %+v", r)
		}
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil || len(r.res.New) != 1 || !r.res.New[0] {
			t.Errorf("caller %d: New %v, err %v; want its one event new", i, r.res.New, r.err)
		}
	}
	calls := commandCalls(t, c, "evalsha") - sha0
	t.Logf("%d + %d single-event Adds took %d EVALSHA", flushers, callers, calls)
	if calls >= callers/2 {
		t.Errorf("%d + %d waiting single-event Adds ran %d EVALSHA, want far fewer: they were not merged", flushers, callers, calls)
	}
	// Exactly the events sent, each once.
	day := tokenledger.DateOf(now)
	days, err := s.Days(ctx, tokenledger.DayQuery{From: day, To: day, Users: true})
	if err != nil || len(days) != 1 {
		t.Fatalf("Days: %v, %v", days, err)
	}
	d := days[0]
	var prompt int64
	var cost tokenledger.Nanos
	for i := range callers {
		prompt += int64(i + 1)
		cost += tokenledger.Nanos(1000 * i)
	}
	if d.RequestCount != callers+flushers || d.PromptTokens != prompt+flushers || d.CompletionTokens != 2*callers+flushers || d.Cost != cost {
		t.Errorf("day totals: %d requests, %d prompt, %d completion tokens, cost %d; want %d, %d, %d, %d", d.RequestCount, d.PromptTokens, d.CompletionTokens, d.Cost, callers+flushers, prompt+flushers, 2*callers+flushers, cost)
	}
	if d.UniqueUsers != 10+1 || d.UniqueSessions != 4+1 { // the blocking calls' "u" and "s" too
		t.Errorf("unique users %d, sessions %d; want 11, 5", d.UniqueUsers, d.UniqueSessions)
	}
	if n := d.Models["m1"].RequestCount; n != 21 {
		t.Errorf("model m1 counted %d events, want 21", n)
	}
	if u := d.Users["u3"]; u.RequestCount != 7 || u.PromptTokens != 4+14+24+34+44+54+64 || u.Cost != 1000*(3+13+23+33+43+53+63) {
		t.Errorf("user u3 = %+v, want 7 events of 4+14+…+64 prompt tokens", u)
	}
	// Again: nothing is new, and nothing more counts.
	for i := range callers {
		res, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{event(fmt.Sprintf("mg-%d", i), now, "m", "", "", 1, 1)}))
		if err != nil || res.New[0] {
			t.Fatalf("resending event %d: New %v, err %v", i, res.New, err)
		}
	}
}

// TestDuplicateIDAcrossMergedCallers: when callers merged into one script
// call carry the same id, it counts once and exactly one of them is told
// it is new.
func TestDuplicateIDAcrossMergedCallers(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	ctx := context.Background()
	now := noon()
	const dups, others = 32, 16
	sha0 := commandCalls(t, c, "evalsha")
	resume := stalled(t, srv, s, "dp")
	results := make([]addResult, dups+others)
	var wg sync.WaitGroup
	for i := range dups + others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "dp-same"
			if i >= dups {
				id = fmt.Sprintf("dp-%d", i)
			}
			results[i].res, results[i].err = s.Add(ctx, storetest.Batch([]tokenledger.Event{event(id, now, "m", "u", "s", 5, 5)}))
		}()
	}
	waitFor(t, "all callers wait in the queue", func() bool { return redis.Queued(s) == dups+others })
	resume()
	wg.Wait()
	newDups := 0
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("caller %d: %v", i, r.err)
		}
		if i < dups && r.res.New[0] {
			newDups++
		}
		if i >= dups && !r.res.New[0] {
			t.Errorf("caller %d with a unique id was told its event is not new", i)
		}
	}
	if newDups != 1 {
		t.Errorf("%d of the %d callers of one id were told it is new, want exactly 1", newDups, dups)
	}
	// Fewer script calls than callers of the duplicate id: at least one
	// call carried it twice or more.
	if calls := commandCalls(t, c, "evalsha") - sha0; calls >= dups {
		t.Errorf("%d EVALSHA for %d callers of one id: the duplicates were not merged", calls, dups)
	}
	day := tokenledger.DateOf(now)
	days, err := s.Days(ctx, tokenledger.DayQuery{From: day, To: day})
	if err != nil || len(days) != 1 {
		t.Fatalf("Days: %v, %v", days, err)
	}
	if want := int64(1 + others + flushers); days[0].RequestCount != want || days[0].PromptTokens != 5*(1+others)+flushers {
		t.Errorf("day counted %d events (%d prompt tokens), want %d: the duplicate id counted once", days[0].RequestCount, days[0].PromptTokens, want)
	}
}

// TestCancelledBeforeSendNotCounted: a caller whose context ends while it
// waits for a flusher returns the context's error, and its event is not
// sent: it never counts, though the callers flushed with it do.
func TestCancelledBeforeSendNotCounted(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	ctx := context.Background()
	now := noon()
	resume := stalled(t, srv, s, "cx")
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() {
		_, err := s.Add(cctx, storetest.Batch([]tokenledger.Event{event("cx-cancelled", now, "m", "u", "s", 100, 100)}))
		cancelled <- err
	}()
	waitFor(t, "the caller waits in the queue", func() bool { return redis.Queued(s) == 1 })
	after := make(chan addResult, 1)
	go func() {
		res, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{event("cx-after", now, "m", "u", "s", 1, 1)}))
		after <- addResult{res, err}
	}()
	waitFor(t, "the second caller waits in the queue", func() bool { return redis.Queued(s) == 2 })
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled caller got %v, want context.Canceled", err)
	}
	resume()
	if r := <-after; r.err != nil || !r.res.New[0] {
		t.Fatalf("the caller queued after it: %+v", r)
	}
	if isClaimed(t, c, s.Prefix(), tokenledger.DateOf(now), "cx-cancelled") {
		t.Errorf("the cancelled caller's event was claimed")
	}
	day := tokenledger.DateOf(now)
	days, err := s.Days(ctx, tokenledger.DayQuery{From: day, To: day})
	if err != nil || len(days) != 1 || days[0].RequestCount != flushers+1 || days[0].PromptTokens != flushers+1 {
		t.Errorf("days = %+v, %v; want the %d blocking events and the one after, not the cancelled one", days, err, flushers)
	}
}

// TestMergedCallFailsEveryCaller: when the merged script call fails (here
// a key of the wrong type), every caller it carries gets the error and
// nothing is written; once fixed, the callers' retries count exactly.
func TestMergedCallFailsEveryCaller(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	ctx := context.Background()
	now := noon().Add(-24 * time.Hour) // a day the blocking calls do not write
	sessions := s.Prefix() + ":{" + string(tokenledger.DateOf(now)) + "}:sessions"
	if err := c.Set(ctx, sessions, "not a set", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	sha0 := commandCalls(t, c, "evalsha")
	const callers = 16
	evs := make([]tokenledger.Event, callers)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("mf-%d", i), now, "m", "u", fmt.Sprintf("s%d", i), 1, 1)
	}
	resume := stalled(t, srv, s, "mf")
	results := make([]addResult, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].res, results[i].err = s.Add(ctx, storetest.Batch(evs[i:i+1]))
		}()
	}
	waitFor(t, "all callers wait in the queue", func() bool { return redis.Queued(s) == callers })
	resume()
	wg.Wait()
	if calls := commandCalls(t, c, "evalsha") - sha0; calls >= flushers+callers {
		t.Errorf("%d EVALSHA: the callers were not merged", calls)
	}
	for i, r := range results {
		if r.err == nil || !strings.Contains(r.err.Error(), "WRONGTYPE") {
			t.Errorf("caller %d: err = %v, want the merged call's WRONGTYPE", i, r.err)
		}
	}
	day := string(tokenledger.DateOf(now))
	if keys := scanKeys(t, c, s.Prefix()+":{"+day+"}:*"); len(keys) != 1 {
		t.Errorf("the failed merged call left keys behind: %v", keys)
	}
	c.Del(ctx, sessions)
	for i := range callers {
		res, err := s.Add(ctx, storetest.Batch(evs[i:i+1]))
		if err != nil || !res.New[0] {
			t.Fatalf("retry %d: New %v, err %v", i, res.New, err)
		}
	}
	days, err := s.Days(ctx, tokenledger.DayQuery{From: tokenledger.Date(day), To: tokenledger.Date(day)})
	if err != nil || len(days) != 1 || days[0].RequestCount != callers || days[0].UniqueSessions != callers {
		t.Errorf("after the retries: %+v, %v; want %d events", days, err, callers)
	}
}

// TestMergedOnCluster: on a cluster, concurrent single-event Adds over
// several days (so several masters) are merged per day, and count exactly.
func TestMergedOnCluster(t *testing.T) {
	cl := redistest.SharedCluster(t)
	s := open(t, redis.RedisOptions{ClusterNodes: cl.Addrs()})
	ctx := context.Background()
	now := noon()
	evalsha := func() int {
		n := 0
		for _, a := range cl.Addrs() {
			n += commandCalls(t, raw(t, a), "evalsha")
		}
		return n
	}
	const callers, days = 256, 8
	sha0 := evalsha()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			e := event(fmt.Sprintf("cm-%d", i), now.Add(-time.Duration(i%days)*24*time.Hour), "m", fmt.Sprintf("u%d", i%5), "s", 1, 1)
			res, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{e}))
			if err == nil && !res.New[0] {
				err = fmt.Errorf("event %d not new", i)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d concurrent single-event Adds over %d days took %d EVALSHA", callers, days, evalsha()-sha0)
	today := tokenledger.DateOf(now)
	got, err := s.Days(ctx, tokenledger.DayQuery{From: today.AddDays(-days + 1), To: today, Users: true})
	if err != nil || len(got) != days {
		t.Fatalf("Days: %d days, %v", len(got), err)
	}
	for _, d := range got {
		if d.RequestCount != callers/days || d.UniqueUsers != 5 || len(d.Users) != 5 {
			t.Errorf("day %s: %d events, %d users; want %d, 5", d.Date, d.RequestCount, d.UniqueUsers, callers/days)
		}
	}
}

// TestFullCallKeepsItsPlace: a batch of 1,001 events of one day is two
// script calls, 1,000 (too large to merge) and 1. The 1-event call must not
// join a merged call that another caller opened earlier in the same
// flush, which would run it before the caller's own first call: an id at
// places 0 and 1,000 must count at place 0, as everywhere else.
func TestFullCallKeepsItsPlace(t *testing.T) {
	srv := redistest.Server(t)
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	ctx := context.Background()
	now := noon()
	resume := stalled(t, srv, s, "fp")
	other := make(chan addResult, 1)
	go func() {
		r, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{event("fp-other", now, "m", "u", "s", 1, 1)}))
		other <- addResult{r, err}
	}()
	waitFor(t, "the other caller queued", func() bool { return redis.Queued(s) == 1 })
	evs := make([]tokenledger.Event, redis.MaxEventsPerCall+1)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("fp-%d", i), now, "m", "u", "s", 1, 1)
	}
	last := len(evs) - 1
	evs[0] = event("fp-twice", now, "first", "u", "s", 100, 0)
	evs[last] = event("fp-twice", now, "second", "u", "s", 7, 0)
	mine := make(chan addResult, 1)
	go func() {
		r, err := s.Add(ctx, storetest.Batch(evs))
		mine <- addResult{r, err}
	}()
	waitFor(t, "the batch queued", func() bool { return redis.Queued(s) == 2 })
	resume()
	if r := <-other; r.err != nil {
		t.Fatal(r.err)
	}
	r := <-mine
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.res.New[0] || r.res.New[last] {
		t.Errorf("New[0] = %v, New[%d] = %v; want true, false (the first place counts)", r.res.New[0], last, r.res.New[last])
	}
	day := tokenledger.DateOf(now)
	days, err := s.Days(ctx, tokenledger.DayQuery{From: day, To: day})
	if err != nil {
		t.Fatal(err)
	}
	if f, sec := days[0].Models["first"], days[0].Models["second"]; f.RequestCount != 1 || f.PromptTokens != 100 || sec.RequestCount != 0 {
		t.Errorf("model first = %+v, second = %+v; want the id counted once, as its first place", f, sec)
	}
}
