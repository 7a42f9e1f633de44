package kvrest_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/redis/kvrest"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// slack is added to every time bound: the machine is small, shared and
// noisy, and these are liveness checks, not speed tests.
const slack = 3 * time.Second

// TestWrongToken: a rejected token is a clear, final error that names the
// host, never holds the token, wraps ErrUnavailable and ErrTokenRejected,
// and is not retried.
func TestWrongToken(t *testing.T) {
	f := front(t)
	const bad = "AXwrong-token-0123456789abcdef"
	_, err := redis.OpenKVRest(context.Background(), redis.KVRestOptions{URL: f.URL(), Token: bad, Logger: quiet})
	t.Logf("Open with a wrong token: %v", err)
	wantUnavailable(t, "Open", err, f.Host(), bad, f.Token())
	if !errors.Is(err, kvrest.ErrTokenRejected) {
		t.Errorf("Open: err = %v, want ErrTokenRejected", err)
	}
	if !strings.Contains(err.Error(), "token was rejected") {
		t.Errorf("Open: error %q does not say the token was rejected", err)
	}
	if st := f.Stats(); st.Requests != 1 || st.Unauthorized != 1 {
		t.Errorf("front saw %+v, want exactly one (unauthorized) request: a 401 is not retried", st)
	}

	s, err := redis.NewKVRest(redis.KVRestOptions{URL: f.URL(), Token: bad, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Add(context.Background(), storetest.Batch(batch("wt", 1)))
	wantUnavailable(t, "Add", err, f.Host(), bad)
	d := tokenledger.DateOf(noon())
	_, err = s.Days(context.Background(), tokenledger.DayQuery{From: d, To: d})
	wantUnavailable(t, "Days", err, f.Host(), bad)
	wantUnavailable(t, "Check", s.Check(context.Background()), f.Host(), bad)
}

// TestUnreachable: a closed port, a listener that never answers and a
// listener that hangs up all give a clear error naming the host within
// the timeout; a caller's shorter deadline wins and is reported as such.
func TestUnreachable(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	silent := listen(t, func(c net.Conn) { <-make(chan struct{}) }) // accepts, never answers
	hangup := listen(t, func(c net.Conn) { c.Close() })             // accepts, hangs up at once

	for _, tc := range []struct {
		name, addr string
		want       string
	}{
		{"closed port", closed, "connection refused"},
		{"silent listener", silent, "no answer within the 2s timeout"},
		// Retried until the attempts or the time run out; on a loaded
		// machine the time may run out after fewer than 4 attempts.
		{"hang-up listener", hangup, "POST /: failed "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const token = "AXsecret-token-for-unreachable"
			start := time.Now()
			_, err := redis.OpenKVRest(context.Background(), redis.KVRestOptions{URL: "http://" + tc.addr, Token: token, Logger: quiet})
			took := time.Since(start)
			t.Logf("after %s: %v", took, err)
			if took > kvrest.DefaultTimeout+slack {
				t.Errorf("Open took %s, want within the %s timeout", took, kvrest.DefaultTimeout)
			}
			wantUnavailable(t, "Open", err, tc.addr, token)
			if err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}

	t.Run("caller deadline", func(t *testing.T) {
		s, err := redis.NewKVRest(redis.KVRestOptions{URL: "http://" + silent, Token: "t", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = s.Add(ctx, storetest.Batch(batch("dl", 1)))
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, tokenledger.ErrUnavailable) {
			t.Errorf("Add past the caller's deadline: err = %v, want context.DeadlineExceeded", err)
		}
		if took > 300*time.Millisecond+slack {
			t.Errorf("Add took %s past a 300ms deadline", took)
		}
	})

	t.Run("short timeout", func(t *testing.T) {
		s, err := redis.NewKVRest(redis.KVRestOptions{URL: "http://" + silent, Token: "t", Timeout: 200 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		start := time.Now()
		_, err = s.Add(context.Background(), storetest.Batch(batch("st", 1)))
		if took := time.Since(start); took > 200*time.Millisecond+slack {
			t.Errorf("Add took %s with a 200ms timeout", took)
		}
		wantUnavailable(t, "Add", err, silent)
		if err != nil && !strings.Contains(err.Error(), "no answer within the 200ms timeout") {
			t.Errorf("error %q does not name the timeout", err)
		}
	})
}

// listen serves every connection to 127.0.0.1:0 with handle, until t ends.
func listen(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go handle(c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// TestRetries: a 5xx answer, a dropped connection and a lost reply are
// retried, and the script's id claim makes every event count once, and
// its claim token report it as counted by this Add; a 400 and a 401 are
// not retried.
func TestRetries(t *testing.T) {
	f := front(t)
	ctx := context.Background()
	one := func(kind kvresttest.FaultKind, wantCommands int64) {
		t.Helper()
		s := open(t, f, redis.KVRestOptions{})
		f.ResetStats()
		f.Inject(kvresttest.Fault{Kind: kind})
		evs := batch(kind.String(), 1)
		res, err := s.Add(ctx, storetest.Batch(evs))
		if err != nil {
			t.Errorf("%s: Add: %v", kind, err)
			return
		}
		if res.Accepted() != 1 {
			t.Errorf("%s: result %+v, want the event reported new", kind, res)
		}
		st := f.Stats()
		if st.Single != 2 || st.Commands != wantCommands || st.Faults[kind] != 1 {
			t.Errorf("%s: front saw %+v, want 2 requests and %d commands run", kind, st, wantCommands)
		}
		if d := today(t, s); d.RequestCount != 1 || d.TotalTokens != 5 || d.UniqueUsers != 1 {
			t.Errorf("%s: today %+v, want the event counted once", kind, d)
		}
		// A retry through the caller counts nothing more.
		if res, err := s.Add(ctx, storetest.Batch(evs)); err != nil || res.Accepted() != 0 {
			t.Errorf("%s: re-sending: %+v, %v", kind, res, err)
		}
	}
	t.Run("5xx before", func(t *testing.T) { one(kvresttest.FailBefore, 1) })
	t.Run("5xx after the command ran", func(t *testing.T) { one(kvresttest.FailAfter, 2) })
	t.Run("dropped before", func(t *testing.T) { one(kvresttest.DropBefore, 1) })
	t.Run("dropped after the command ran", func(t *testing.T) { one(kvresttest.DropAfter, 2) })

	t.Run("lost reply still reports new and duplicate exactly", func(t *testing.T) {
		// The retry finds the ids claimed by the lost attempt with its
		// token: counted once, reported as new. An id counted before the
		// Add, and an id's second place in the batch, stay duplicates.
		s := open(t, f, redis.KVRestOptions{})
		old := batch("lost-old", 1)
		if res, err := s.Add(ctx, storetest.Batch(old)); err != nil || res.Accepted() != 1 {
			t.Fatalf("first Add: %+v, %v", res, err)
		}
		evs := append(batch("lost", 3), old[0])
		evs = append(evs, evs[0])
		before := today(t, s).RequestCount
		f.Inject(kvresttest.Fault{Kind: kvresttest.DropAfter})
		res, err := s.Add(ctx, storetest.Batch(evs))
		want := []bool{true, true, true, false, false}
		if err != nil || !slices.Equal(res.New, want) {
			t.Errorf("Add after a lost reply: %+v, %v; want New %v", res, err, want)
		}
		if d := today(t, s); d.RequestCount != before+3 {
			t.Errorf("requestCount grew by %d, want 3", d.RequestCount-before)
		}
	})

	t.Run("lost reply of a summed call reports every event new once", func(t *testing.T) {
		// 200 new ids are one summed call (v9). Its retry finds the ids
		// claimed with its token, writes nothing, and goes to v7 with the
		// same token, which reports them new without counting them again.
		s := open(t, f, redis.KVRestOptions{})
		evs := batch("lost-sum", 200)
		before := today(t, s).RequestCount
		f.Inject(kvresttest.Fault{Kind: kvresttest.DropAfter})
		res, err := s.Add(ctx, storetest.Batch(evs))
		if err != nil || res.Accepted() != 200 {
			t.Errorf("Add after a lost reply: accepted %d, %v; want 200", res.Accepted(), err)
		}
		if d := today(t, s); d.RequestCount != before+200 {
			t.Errorf("requestCount grew by %d, want 200", d.RequestCount-before)
		}
	})

	t.Run("an id twice in a batch of several calls is new once", func(t *testing.T) {
		// 1,100 events of one day are two script calls (1,000 + 100) with
		// one claim token; the id's second place, in the second call, finds
		// the claim holding that token and must still answer duplicate.
		s := open(t, f, redis.KVRestOptions{})
		evs := batch("twice", 1100)
		evs[1080].ID = evs[0].ID
		before := today(t, s).RequestCount
		res, err := s.Add(ctx, storetest.Batch(evs))
		if err != nil || !res.New[0] || res.New[1080] || res.Accepted() != 1099 || res.Duplicates() != 1 {
			t.Errorf("Add: new[0] %v, new[1080] %v, accepted %d, duplicates %d, %v; want the first place new, the second not, 1099 and 1",
				res.New[0], res.New[1080], res.Accepted(), res.Duplicates(), err)
		}
		if d := today(t, s); d.RequestCount != before+1099 {
			t.Errorf("requestCount grew by %d, want 1099", d.RequestCount-before)
		}
	})

	t.Run("pipeline dropped after it ran", func(t *testing.T) {
		s := open(t, f, redis.KVRestOptions{})
		evs := batch("pipe", 10)
		for i := range 5 {
			evs[i].Timestamp = evs[i].Timestamp.Add(-24 * time.Hour) // two days: a /pipeline request
		}
		f.ResetStats()
		f.Inject(kvresttest.Fault{Kind: kvresttest.DropAfter})
		if res, err := s.Add(ctx, storetest.Batch(evs)); err != nil || res.Accepted() != 10 {
			t.Fatalf("Add: %+v, %v; want all 10 reported new", res, err)
		}
		// The second request finds the claims the first made: each summed
		// call writes nothing and answers 0, and a third request sends the
		// calls per event, which know their claim tokens.
		if st := f.Stats(); st.Pipeline != 3 || st.Commands != 6 {
			t.Errorf("front saw %+v, want 3 pipeline requests of 2 script calls", st)
		}
		d := tokenledger.DateOf(noon())
		days, err := s.Days(ctx, tokenledger.DayQuery{From: d.AddDays(-1), To: d})
		if err != nil || len(days) != 2 || days[0].RequestCount != 5 || days[1].RequestCount != 5 {
			t.Errorf("days %+v, %v: want 5 events on each of two days", days, err)
		}
	})

	t.Run("400 is final", func(t *testing.T) {
		s := open(t, f, redis.KVRestOptions{})
		f.ResetStats()
		f.Inject(kvresttest.Fault{Kind: kvresttest.Reject})
		_, err := s.Add(ctx, storetest.Batch(batch("rej", 1)))
		if err == nil || errors.Is(err, tokenledger.ErrUnavailable) || !strings.Contains(err.Error(), "injected rejection") {
			t.Errorf("Add answered 400: err = %v, want the command's error, not ErrUnavailable", err)
		}
		wantClear(t, "Add", err, f.Host(), f.Token())
		if st := f.Stats(); st.Requests != 1 || st.Commands != 0 {
			t.Errorf("front saw %+v, want one request: a 400 is not retried", st)
		}
		if d := today(t, s); d.RequestCount != 0 {
			t.Errorf("a rejected Add counted %d events", d.RequestCount)
		}
	})

	t.Run("5xx on every attempt", func(t *testing.T) {
		s := open(t, f, redis.KVRestOptions{})
		f.ResetStats()
		for range kvrest.DefaultMaxAttempts {
			f.Inject(kvresttest.Fault{Kind: kvresttest.FailBefore})
		}
		_, err := s.Add(ctx, storetest.Batch(batch("all5xx", 1)))
		t.Logf("Add: %v", err)
		wantUnavailable(t, "Add", err, f.Host(), f.Token())
		if err != nil && !strings.Contains(err.Error(), "503") {
			t.Errorf("error %q does not give the status", err)
		}
		if st := f.Stats(); st.Requests != kvrest.DefaultMaxAttempts || st.Commands != 0 {
			t.Errorf("front saw %+v, want %d requests", st, kvrest.DefaultMaxAttempts)
		}
	})

	t.Run("reply later than the timeout", func(t *testing.T) {
		s := open(t, f, redis.KVRestOptions{})
		fast, err := redis.NewKVRest(redis.KVRestOptions{URL: f.URL(), Token: f.Token(), Prefix: s.Prefix(), Timeout: 300 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer fast.Close()
		f.Inject(kvresttest.Fault{Kind: kvresttest.Delay, Delay: 800 * time.Millisecond})
		evs := batch("late", 1)
		start := time.Now()
		_, err = fast.Add(ctx, storetest.Batch(evs))
		if took := time.Since(start); took > 300*time.Millisecond+slack {
			t.Errorf("Add took %s with a 300ms timeout", took)
		}
		wantUnavailable(t, "Add", err, f.Host())
		if err != nil && !strings.Contains(err.Error(), "no answer within the 300ms timeout") {
			t.Errorf("error %q does not name the timeout", err)
		}
		// The late command still runs on the server; sending the events
		// again (as the fallback spool does) counts them once.
		for deadline := time.Now().Add(10 * time.Second); today(t, s).RequestCount == 0 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := s.Add(ctx, storetest.Batch(evs)); err != nil {
			t.Fatal(err)
		}
		if d := today(t, s); d.RequestCount != 1 {
			t.Errorf("today counts %d events, want 1", d.RequestCount)
		}
	})

	t.Run("cancelled during the backoff", func(t *testing.T) {
		s := open(t, f, redis.KVRestOptions{Timeout: 10 * time.Second, MaxAttempts: 50})
		for range 50 {
			f.Inject(kvresttest.Fault{Kind: kvresttest.FailBefore})
		}
		defer f.ClearFaults()
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(150*time.Millisecond, cancel)
		start := time.Now()
		_, err := s.Add(cctx, storetest.Batch(batch("cancel", 1)))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Add cancelled while retrying: err = %v, want context.Canceled", err)
		}
		if took := time.Since(start); took > 150*time.Millisecond+slack {
			t.Errorf("Add returned %s after it started, long after its context was cancelled", took)
		}
	})
}
