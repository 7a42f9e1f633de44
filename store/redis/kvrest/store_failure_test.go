package kvrest_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/kvresttest"
	"github.com/tokenledger/tokenledger/internal/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/redis/kvrest"
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
	_, err = s.Add(context.Background(), batch("wt", 1))
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
		_, err = s.Add(ctx, batch("dl", 1))
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
		_, err = s.Add(context.Background(), batch("st", 1))
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
		res, err := s.Add(ctx, evs)
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
		if res, err := s.Add(ctx, evs); err != nil || res.Accepted() != 0 {
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
		if res, err := s.Add(ctx, old); err != nil || res.Accepted() != 1 {
			t.Fatalf("first Add: %+v, %v", res, err)
		}
		evs := append(batch("lost", 3), old[0])
		evs = append(evs, evs[0])
		before := today(t, s).RequestCount
		f.Inject(kvresttest.Fault{Kind: kvresttest.DropAfter})
		res, err := s.Add(ctx, evs)
		want := []bool{true, true, true, false, false}
		if err != nil || !slices.Equal(res.New, want) {
			t.Errorf("Add after a lost reply: %+v, %v; want New %v", res, err, want)
		}
		if d := today(t, s); d.RequestCount != before+3 {
			t.Errorf("requestCount grew by %d, want 3", d.RequestCount-before)
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
		res, err := s.Add(ctx, evs)
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
		if res, err := s.Add(ctx, evs); err != nil || res.Accepted() != 10 {
			t.Fatalf("Add: %+v, %v; want all 10 reported new", res, err)
		}
		if st := f.Stats(); st.Pipeline != 2 || st.Commands != 4 {
			t.Errorf("front saw %+v, want 2 pipeline requests of 2 script calls", st)
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
		_, err := s.Add(ctx, batch("rej", 1))
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
		_, err := s.Add(ctx, batch("all5xx", 1))
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
		_, err = fast.Add(ctx, evs)
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
		if _, err := s.Add(ctx, evs); err != nil {
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
		_, err := s.Add(cctx, batch("cancel", 1))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Add cancelled while retrying: err = %v, want context.Canceled", err)
		}
		if took := time.Since(start); took > 150*time.Millisecond+slack {
			t.Errorf("Add returned %s after it started, long after its context was cancelled", took)
		}
	})
}

// TestReadOnlyToken: a store with only the read-only token reads the days
// a full store wrote and refuses every write without sending it; the
// read-only token given as the standard one fails to open with a hint.
func TestReadOnlyToken(t *testing.T) {
	f := front(t)
	ctx := context.Background()
	full := open(t, f, redis.KVRestOptions{})
	if _, err := full.Add(ctx, batch("ro", 12)); err != nil {
		t.Fatal(err)
	}
	ro := open(t, f, redis.KVRestOptions{ReadOnlyToken: f.ReadOnlyToken(), Prefix: full.Prefix()})
	if !ro.ReadOnly() || full.ReadOnly() {
		t.Errorf("ReadOnly: %v (read-only store), %v (full store)", ro.ReadOnly(), full.ReadOnly())
	}
	if got, want := today(t, ro), today(t, full); got.RequestCount != 12 || got.TotalTokens != want.TotalTokens || len(got.Users) != 7 {
		t.Errorf("read-only store reads %+v, want %+v", got, want)
	}

	f.ResetStats()
	_, err := ro.Add(ctx, batch("ro-write", 1))
	if !errors.Is(err, kvrest.ErrReadOnly) || errors.Is(err, tokenledger.ErrUnavailable) {
		t.Errorf("Add with the read-only token: err = %v, want ErrReadOnly (not ErrUnavailable)", err)
	}
	wantClear(t, "Add", err, f.Host(), f.ReadOnlyToken())
	if err := ro.Reset(ctx); !errors.Is(err, kvrest.ErrReadOnly) {
		t.Errorf("Reset with the read-only token: err = %v, want ErrReadOnly", err)
	}
	if st := f.Stats(); st.Requests != 0 {
		t.Errorf("the refused writes sent %d requests", st.Requests)
	}
	if err := ro.Check(ctx); !errors.Is(err, kvrest.ErrReadOnly) || !strings.Contains(err.Error(), "reads work") {
		t.Errorf("Check with the read-only token: %v, want an error saying reads work and writes cannot", err)
	}

	// The client refuses writes itself too, before sending anything.
	c, err := kvrest.NewClient(kvrest.ClientOptions{URL: f.URL(), Token: f.ReadOnlyToken(), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	f.ResetStats()
	for _, cmds := range [][][]any{{{"SET", "k", "v"}}, {{"HGETALL", "k"}, {"EVALSHA", "x", "0"}}, {{"SCAN", "0"}}, {{}}, {{int64(1)}}} {
		if _, err := c.Do(ctx, cmds); !errors.Is(err, kvrest.ErrReadOnly) {
			t.Errorf("read-only client Do(%v): err = %v, want ErrReadOnly", cmds, err)
		}
	}
	if r, err := c.Do(ctx, [][]any{{"get", "nothing-here"}}); err != nil || r[0] != nil {
		t.Errorf("read-only client GET: %v, %v", r, err)
	}
	if st := f.Stats(); st.Requests != 1 {
		t.Errorf("read-only client sent %d requests, want only the GET", st.Requests)
	}

	// The read-only token given as the standard token: the server refuses
	// the script (NOPERM), and the error says what is likely wrong.
	_, err = redis.OpenKVRest(ctx, redis.KVRestOptions{URL: f.URL(), Token: f.ReadOnlyToken(), Logger: quiet})
	t.Logf("Open with the read-only token as the token: %v", err)
	wantClear(t, "Open", err, f.Host(), f.ReadOnlyToken())
	if err == nil || !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), "read-only token") {
		t.Errorf("Open: error %v does not say the token may only read", err)
	}
}

// TestOptions: values are trimmed; bad ones are refused with an error that
// never repeats a secret.
func TestOptions(t *testing.T) {
	f := front(t)
	s := open(t, f, redis.KVRestOptions{URL: "  " + f.URL() + "/\n", Token: "\t" + f.Token() + " \r\n", Prefix: " " + redistest.Prefix() + " "})
	if _, err := s.Add(context.Background(), batch("trim", 2)); err != nil {
		t.Errorf("Add through trimmed options: %v", err)
	}
	if info := s.Info(); info.Kind != "kv-rest" || !info.Database || info.Location != f.Host() {
		t.Errorf("Info = %+v, want kv-rest, a database, at %s", info, f.Host())
	}
	const secret = "s3cr3t-value"
	for _, o := range []redis.KVRestOptions{
		{Token: secret},
		{URL: "redis://example.upstash.io", Token: secret},
		{URL: "example.upstash.io", Token: secret},
		{URL: "https://default:" + secret + "@example.upstash.io", Token: "t"},
		{URL: "https://example.upstash.io?_token=" + secret, Token: "t"},
		{URL: "https://example.upstash.io"},
		{URL: "https://example.upstash.io", Token: "two " + secret},
		{URL: "https://example.upstash.io", Token: secret, Timeout: -time.Second},
		{URL: "https://example.upstash.io", Token: secret, Prefix: "a{b}"},
		{URL: "https://example.upstash.io", Token: secret, RetentionDays: -1},
	} {
		_, err := redis.NewKVRest(o)
		if err == nil {
			t.Errorf("New(%+v) succeeded", o)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("New: error %q repeats a secret", err)
		}
	}
}

// TestLogLines: Open logs the connected line; an outage is logged once,
// and the recovery logs the connected line again.
func TestLogLines(t *testing.T) {
	f := front(t)
	rec := &logRecorder{}
	s := open(t, f, redis.KVRestOptions{Logger: slog.New(rec)})
	if n := rec.count(redis.ConnectedMessage); n != 1 {
		t.Errorf("connected line logged %d times after Open, want 1:\n%s", n, rec.all())
	}
	for range 2 * kvrest.DefaultMaxAttempts {
		f.Inject(kvresttest.Fault{Kind: kvresttest.FailBefore})
	}
	for range 2 {
		if _, err := s.Add(context.Background(), batch("log", 1)); err == nil {
			t.Fatal("Add succeeded through injected failures")
		}
	}
	if _, err := s.Add(context.Background(), batch("log", 1)); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(redis.UnavailableMessage); n != 1 {
		t.Errorf("outage logged %d times, want 1:\n%s", n, rec.all())
	}
	if n := rec.count(redis.ConnectedMessage); n != 2 {
		t.Errorf("connected line logged %d times, want 2 (open, recovery):\n%s", n, rec.all())
	}
	if strings.Contains(rec.all(), f.Token()) {
		t.Errorf("the log holds the token:\n%s", rec.all())
	}
}

// TestOneRequestEach: one event is one request, a batch of one day one
// request, a batch over days one /pipeline request, and reading 91 days one
// /pipeline request.
func TestOneRequestEach(t *testing.T) {
	f := front(t)
	s := open(t, f, redis.KVRestOptions{})
	ctx := context.Background()
	d := tokenledger.DateOf(noon())
	for _, tc := range []struct {
		name                   string
		do                     func() error
		wantSingle, wantPipely int64
	}{
		{"one event", func() error { _, err := s.Add(ctx, batch("one", 1)); return err }, 1, 0},
		{"100 events of one day", func() error { _, err := s.Add(ctx, batch("hundred", 100)); return err }, 1, 0},
		{"events of three days", func() error {
			evs := batch("three", 30)
			for i := range evs {
				evs[i].Timestamp = evs[i].Timestamp.Add(-time.Duration(i%3) * 24 * time.Hour)
			}
			_, err := s.Add(ctx, evs)
			return err
		}, 0, 1},
		// The first read asks for the days' request counts, then reads the
		// three that hold usage; the second only asks.
		{"read 91 days with users", func() error {
			days, err := s.Days(ctx, tokenledger.DayQuery{From: d.AddDays(-90), To: d, Users: true})
			if err == nil && len(days) != 3 {
				err = errors.New("wrong number of days")
			}
			return err
		}, 0, 2},
		{"read 91 days with users again", func() error {
			days, err := s.Days(ctx, tokenledger.DayQuery{From: d.AddDays(-90), To: d, Users: true})
			if err == nil && len(days) != 3 {
				err = errors.New("wrong number of days")
			}
			return err
		}, 0, 1},
		{"check", func() error { return s.Check(ctx) }, 0, 1},
	} {
		f.ResetStats()
		if err := tc.do(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if st := f.Stats(); st.Single != tc.wantSingle || st.Pipeline != tc.wantPipely || st.Requests != tc.wantSingle+tc.wantPipely {
			t.Errorf("%s: front saw %+v, want %d single and %d pipeline requests", tc.name, st, tc.wantSingle, tc.wantPipely)
		}
	}
}

// TestScriptReloaded: after the server lost its scripts (SCRIPT FLUSH, a
// restart), Add sends the script's source and counts normally.
func TestScriptReloaded(t *testing.T) {
	srv := redistest.Shared(t)
	f := kvresttest.Start(t, srv.Addr(), kvresttest.Options{})
	s := open(t, f, redis.KVRestOptions{})
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer c.Close()
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	f.ResetStats()
	res, err := s.Add(context.Background(), batch("flush", 3))
	if err != nil || res.Accepted() != 3 {
		t.Fatalf("Add after SCRIPT FLUSH: %+v, %v", res, err)
	}
	if st := f.Stats(); st.Single != 2 {
		t.Errorf("front saw %+v, want EVALSHA (NOSCRIPT) then EVAL", st)
	}
}

// TestRedisBehindTheAPIDown: when the database behind the REST API stops,
// the API answers 5xx and the store fails within the timeout with
// ErrUnavailable; when it is back (without the script, which a restart
// loses), the store works again and logs the connected line again.
func TestRedisBehindTheAPIDown(t *testing.T) {
	srv := redistest.Server(t)
	f := kvresttest.Start(t, srv.Addr(), kvresttest.Options{})
	rec := &logRecorder{}
	s := open(t, f, redis.KVRestOptions{Logger: slog.New(rec), Timeout: kvrest.DefaultTimeout})
	ctx := context.Background()
	if _, err := s.Add(ctx, batch("before", 3)); err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)
	start := time.Now()
	_, err := s.Add(ctx, batch("down", 3))
	if took := time.Since(start); took > kvrest.DefaultTimeout+slack {
		t.Errorf("Add took %s with the database down", took)
	}
	t.Logf("Add with the database down: %v", err)
	wantUnavailable(t, "Add", err, f.Host(), f.Token())
	if err != nil && !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q does not give the API's status", err)
	}
	srv.Restart(t)
	res, err := s.Add(ctx, batch("after", 3))
	if err != nil || res.Accepted() != 3 {
		t.Fatalf("Add after the database came back: %+v, %v", res, err)
	}
	if n := rec.count(redis.UnavailableMessage); n != 1 {
		t.Errorf("outage logged %d times, want 1:\n%s", n, rec.all())
	}
	if n := rec.count(redis.ConnectedMessage); n != 2 {
		t.Errorf("connected line logged %d times, want 2:\n%s", n, rec.all())
	}
}

// TestScriptReloadStaysWithinTimeout: Timeout bounds one Add, retries
// included — also when a NOSCRIPT answer makes it send the script's source
// in a second request. Here each request is held 900 ms against a 1 s
// timeout: the Add gives up at the timeout (a liveness bound, not a speed
// figure), where it used to take both delays.
func TestScriptReloadStaysWithinTimeout(t *testing.T) {
	srv := redistest.Shared(t)
	f := kvresttest.Start(t, srv.Addr(), kvresttest.Options{})
	const timeout = time.Second
	s := open(t, f, redis.KVRestOptions{Timeout: timeout})
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer c.Close()
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	f.Inject(kvresttest.Fault{Kind: kvresttest.Delay, Delay: 900 * time.Millisecond},
		kvresttest.Fault{Kind: kvresttest.Delay, Delay: 900 * time.Millisecond})
	start := time.Now()
	_, err := s.Add(context.Background(), batch("reload-timeout", 2))
	took := time.Since(start)
	if !errors.Is(err, tokenledger.ErrUnavailable) {
		t.Errorf("Add = %v, want the timeout as ErrUnavailable", err)
	}
	if took > timeout+500*time.Millisecond {
		t.Errorf("Add took %v with a timeout of %v", took, timeout)
	}
}
