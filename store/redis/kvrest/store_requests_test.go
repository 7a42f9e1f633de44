package kvrest_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit"
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/redis/kvrest"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestReadOnlyToken: a store with only the read-only token reads the days
// a full store wrote and refuses every write without sending it; the
// read-only token given as the standard one fails to open with a hint.
func TestReadOnlyToken(t *testing.T) {
	f := front(t)
	ctx := context.Background()
	full := open(t, f, redis.KVRestOptions{})
	if _, err := full.Add(ctx, storetest.Batch(batch("ro", 12))); err != nil {
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
	_, err := ro.Add(ctx, storetest.Batch(batch("ro-write", 1)))
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
	if _, err := s.Add(context.Background(), storetest.Batch(batch("trim", 2))); err != nil {
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
	rec := &testkit.LogRecorder{}
	s := open(t, f, redis.KVRestOptions{Logger: slog.New(rec)})
	if n := rec.Count(redis.ConnectedMessage); n != 1 {
		t.Errorf("connected line logged %d times after Open, want 1:\n%s", n, rec.All())
	}
	for range 2 * kvrest.DefaultMaxAttempts {
		f.Inject(kvresttest.Fault{Kind: kvresttest.FailBefore})
	}
	for range 2 {
		if _, err := s.Add(context.Background(), storetest.Batch(batch("log", 1))); err == nil {
			t.Fatal("Add succeeded through injected failures")
		}
	}
	if _, err := s.Add(context.Background(), storetest.Batch(batch("log", 1))); err != nil {
		t.Fatal(err)
	}
	if n := rec.Count(redis.UnavailableMessage); n != 1 {
		t.Errorf("outage logged %d times, want 1:\n%s", n, rec.All())
	}
	if n := rec.Count(redis.ConnectedMessage); n != 2 {
		t.Errorf("connected line logged %d times, want 2 (open, recovery):\n%s", n, rec.All())
	}
	if strings.Contains(rec.All(), f.Token()) {
		t.Errorf("the log holds the token:\n%s", rec.All())
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
		{"one event", func() error { _, err := s.Add(ctx, storetest.Batch(batch("one", 1))); return err }, 1, 0},
		{"100 events of one day", func() error { _, err := s.Add(ctx, storetest.Batch(batch("hundred", 100))); return err }, 1, 0},
		{"events of three days", func() error {
			evs := batch("three", 30)
			for i := range evs {
				evs[i].Timestamp = evs[i].Timestamp.Add(-time.Duration(i%3) * 24 * time.Hour)
			}
			_, err := s.Add(ctx, storetest.Batch(evs))
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
	res, err := s.Add(context.Background(), storetest.Batch(batch("flush", 3)))
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
	rec := &testkit.LogRecorder{}
	s := open(t, f, redis.KVRestOptions{Logger: slog.New(rec), Timeout: kvrest.DefaultTimeout})
	ctx := context.Background()
	if _, err := s.Add(ctx, storetest.Batch(batch("before", 3))); err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)
	start := time.Now()
	_, err := s.Add(ctx, storetest.Batch(batch("down", 3)))
	if took := time.Since(start); took > kvrest.DefaultTimeout+slack {
		t.Errorf("Add took %s with the database down", took)
	}
	t.Logf("Add with the database down: %v", err)
	wantUnavailable(t, "Add", err, f.Host(), f.Token())
	if err != nil && !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q does not give the API's status", err)
	}
	srv.Restart(t)
	res, err := s.Add(ctx, storetest.Batch(batch("after", 3)))
	if err != nil || res.Accepted() != 3 {
		t.Fatalf("Add after the database came back: %+v, %v", res, err)
	}
	if n := rec.Count(redis.UnavailableMessage); n != 1 {
		t.Errorf("outage logged %d times, want 1:\n%s", n, rec.All())
	}
	if n := rec.Count(redis.ConnectedMessage); n != 2 {
		t.Errorf("connected line logged %d times, want 2:\n%s", n, rec.All())
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
	_, err := s.Add(context.Background(), storetest.Batch(batch("reload-timeout", 2)))
	took := time.Since(start)
	if !errors.Is(err, tokenledger.ErrUnavailable) {
		t.Errorf("Add = %v, want the timeout as ErrUnavailable", err)
	}
	if took > timeout+500*time.Millisecond {
		t.Errorf("Add took %v with a timeout of %v", took, timeout)
	}
}
