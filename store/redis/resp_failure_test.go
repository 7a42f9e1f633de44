package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// batch returns n events of today under prefix p.
func batch(p string, n int) []tokenledger.Event {
	now := noon()
	evs := make([]tokenledger.Event, n)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("%s-%d", p, i), now, "m", fmt.Sprintf("u%d", i%7), "s", 3, 2)
	}
	return evs
}

// wantUnavailable fails t unless err wraps ErrUnavailable and names addr.
func wantUnavailable(t *testing.T, what string, err error, addr string) {
	t.Helper()
	if !errors.Is(err, tokenledger.ErrUnavailable) {
		t.Errorf("%s: err = %v, want ErrUnavailable", what, err)
		return
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("%s: error %q does not name the server %s", what, err, addr)
	}
}

// TestStoppedServer: with Redis gone, every method fails fast with
// ErrUnavailable naming the server, the outage is logged once, and the
// store recovers (logging the connected line again) when Redis is back.
func TestStoppedServer(t *testing.T) {
	srv := redistest.Server(t)
	rec := &testkit.LogRecorder{}
	s := open(t, redis.RedisOptions{URL: srv.URL(), Logger: slog.New(rec)})
	ctx := context.Background()
	if _, err := s.Add(ctx, storetest.Batch(batch("warm", 3))); err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)

	start := time.Now()
	_, err := s.Add(ctx, storetest.Batch(batch("down", 3)))
	if took := time.Since(start); took > redis.DefaultTimeout+500*time.Millisecond {
		t.Errorf("Add against a stopped server took %s, want within the %s timeout", took, redis.DefaultTimeout)
	}
	wantUnavailable(t, "Add", err, srv.Addr())
	today := tokenledger.DateOf(noon())
	_, err = s.Days(ctx, tokenledger.DayQuery{From: today, To: today})
	wantUnavailable(t, "Days", err, srv.Addr())
	wantUnavailable(t, "Reset", s.Reset(ctx), srv.Addr())
	wantUnavailable(t, "Check", s.Check(ctx), srv.Addr())
	if n := rec.Count(redis.UnavailableMessage); n != 1 {
		t.Errorf("the outage was logged %d times, want once: %q", n, rec.Lines())
	}

	srv.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = s.Add(ctx, storetest.Batch(batch("back", 3)))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Add after the server came back: %v", err)
	}
	if n := rec.Count(redis.ConnectedMessage); n != 2 {
		t.Errorf("connected line logged %d times, want 2 (open, recovery): %q", n, rec.Lines())
	}
}

// TestHungServer: a server that stops answering (SIGSTOP) makes Add fail
// with ErrUnavailable within the read timeout; after SIGCONT nothing is
// half-written (claims and counters agree) and a retry of the same events
// counts each exactly once.
func TestHungServer(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	ctx := context.Background()
	warm := batch("warm", 5)
	if _, err := s.Add(ctx, storetest.Batch(warm)); err != nil {
		t.Fatal(err)
	}
	evs := batch("hung", 40)

	srv.Pause(t)
	paused := true
	defer func() {
		if paused {
			srv.Resume(t)
		}
	}()
	start := time.Now()
	_, err := s.Add(ctx, storetest.Batch(evs))
	took := time.Since(start)
	t.Logf("Add against a hung server failed after %s: %v", took, err)
	if took > redis.DefaultTimeout+time.Second || took < redis.DefaultTimeout/2 {
		t.Errorf("Add against a hung server took %s, want about the %s read timeout", took, redis.DefaultTimeout)
	}
	wantUnavailable(t, "Add", err, srv.Addr())

	// A deadline shorter than the timeout wins, and is reported as such.
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start = time.Now()
	_, err = s.Add(dctx, storetest.Batch(evs))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Add with a 300 ms deadline against a hung server: err = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Add with a 300 ms deadline took %s", took)
	}

	srv.Resume(t)
	paused = false
	// The paused server may still run what it had received: wait until it
	// answers, then compare claims with counters.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	today := string(tokenledger.DateOf(noon()))
	// A call it had received may also run between the reads of claims and
	// counters (the PING came on another connection), so a reading counts
	// only when requestCount is the same before and after the claims.
	count := func() int64 {
		t.Helper()
		n, err := c.HGet(ctx, s.Prefix()+":{"+today+"}:totals", "n").Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	consistent := func(when string) int64 {
		t.Helper()
		for range 50 {
			before := count()
			claims := countClaims(t, c, s.Prefix(), tokenledger.Date(today))
			if n := count(); n == before {
				if int64(claims) != n {
					t.Errorf("%s: %d claims but requestCount %d: half-written", when, claims, n)
				}
				return n
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: requestCount still changed after 50 readings", when)
		return 0
	}
	consistent("after SIGCONT")

	res, err := s.Add(ctx, storetest.Batch(evs))
	if err != nil {
		t.Fatalf("retry after SIGCONT: %v", err)
	}
	t.Logf("retry counted %d of %d events (the rest had been counted by the timed-out calls)", res.Accepted(), len(evs))
	if n := consistent("after the retry"); n != int64(len(warm)+len(evs)) {
		t.Errorf("requestCount after the retry = %d, want %d: every event exactly once", n, len(warm)+len(evs))
	}
	res, err = s.Add(ctx, storetest.Batch(evs))
	if err != nil || res.Accepted() != 0 {
		t.Errorf("a second retry accepted %d (err %v), want 0", res.Accepted(), err)
	}
}

// TestCancelWhileWaiting: cancelling the context of a call that waits on a
// hung server returns context.Canceled, not ErrUnavailable.
func TestCancelWhileWaiting(t *testing.T) {
	srv := redistest.Server(t)
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	srv.Pause(t)
	defer srv.Resume(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.Add(ctx, storetest.Batch(batch("cancel", 2)))
	if !errors.Is(err, context.Canceled) || errors.Is(err, tokenledger.ErrUnavailable) {
		t.Errorf("Add cancelled while waiting: err = %v, want context.Canceled only", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Add cancelled after 100 ms returned after %s", took)
	}
}

// TestCloseWhileWaiting: a call waiting on a hung server when the store
// closes returns ErrClosed without waiting for the server.
func TestCloseWhileWaiting(t *testing.T) {
	srv := redistest.Server(t)
	s, err := redis.OpenRedis(context.Background(), redis.RedisOptions{URL: srv.URL(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	defer srv.Resume(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Add(context.Background(), storetest.Batch(batch("closing", 2)))
		done <- err
	}()
	srv.WaitUnread(t, 1, 5*time.Second) // the Add's request waits at the server
	select {
	case err := <-done:
		t.Fatalf("Add returned before Close, with the server stopped: %v", err)
	default:
	}
	go s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, tokenledger.ErrClosed) {
			t.Errorf("Add waiting when the store closed: err = %v, want ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Error("Add waiting on a hung server did not return within a second of Close")
	}
}

// TestOpenUnreachable: Open fails fast with ErrUnavailable naming the
// server when nothing listens there.
func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	_, err = redis.OpenRedis(context.Background(), redis.RedisOptions{URL: "redis://" + addr, Logger: quiet})
	wantUnavailable(t, "Open", err, addr)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Open against a closed port took %s", took)
	}
}

// TestNoPasswordInErrorsOrLogs: neither errors nor log lines nor Info
// ever show a password, whether it is right, wrong, or in a bad URL.
func TestNoPasswordInErrorsOrLogs(t *testing.T) {
	const good, bad = "g00d-s3cret-pw", "wr0ng-s3cret-pw"
	srv := redistest.Server(t, "--requirepass", good)
	rec := &testkit.LogRecorder{}
	log := slog.New(rec)
	ctx := context.Background()
	leak := func(what, s string) {
		t.Helper()
		if strings.Contains(s, good) || strings.Contains(s, bad) || strings.Contains(s, "s3cret") {
			t.Errorf("%s shows a password: %s", what, s)
		}
	}

	s := open(t, redis.RedisOptions{URL: "redis://:" + good + "@" + srv.Addr(), Logger: log})
	if _, err := s.Add(ctx, storetest.Batch(batch("pw", 2))); err != nil {
		t.Fatalf("Add with the right password: %v", err)
	}
	if got := s.Info(); got.Location != srv.Addr() || got.Kind != "redis" || !got.Database {
		t.Errorf("Info = %+v, want redis database at %s", got, srv.Addr())
	}
	leak("Info", fmt.Sprint(s.Info()))

	_, err := redis.OpenRedis(ctx, redis.RedisOptions{URL: "redis://default:" + bad + "@" + srv.Addr(), Logger: log})
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	wantUnavailable(t, "Open with a wrong password", err, srv.Addr())
	leak("wrong-password error", err.Error())

	srv.Kill(t)
	_, err = s.Add(ctx, storetest.Batch(batch("pw2", 1)))
	wantUnavailable(t, "Add to a stopped server", err, srv.Addr())
	leak("stopped-server error", err.Error())

	for _, u := range []string{
		"redis://user:" + bad + "@127.0.0.1:notaport",
		"redis://user:" + bad + "@127.0.0.1:6379/notadb",
		"redis://user:" + bad + "@127.0.0.1:6379/0?unknown_option=1",
		"http://user:" + bad + "@127.0.0.1:6379",
		"redis://user:" + bad + "@[::1",
		// Not URL-escaped: url.Parse would take the password's start for
		// the host and its rest for the path, query or fragment.
		"redis://user:12/" + bad + "@127.0.0.1:6379/0",
		"redis://user:12?" + bad + "@127.0.0.1:6379/0",
		"redis://user:12#" + bad + "@127.0.0.1:6379",
		"redis://user:ab/" + bad + "@127.0.0.1:6379",
	} {
		_, err := redis.NewRedis(redis.RedisOptions{URL: u})
		if err == nil {
			t.Errorf("New accepted a bad URL")
			continue
		}
		leak("bad-URL error", err.Error())
	}
	_, err = redis.NewRedis(redis.RedisOptions{ClusterNodes: []string{"127.0.0.1:1", "redis://a:12?" + bad + "@127.0.0.1:2"}})
	if err == nil {
		t.Error("New accepted a cluster node URL with an unescaped password")
	} else {
		leak("cluster node URL error", err.Error())
	}
	_, err = redis.NewRedis(redis.RedisOptions{ClusterNodes: []string{"redis://a:" + bad + "@127.0.0.1:1", "redis://a:other@127.0.0.1:2"}})
	if err == nil {
		t.Error("New accepted cluster nodes with different passwords")
	} else {
		leak("cluster credentials error", err.Error())
	}
	for _, line := range rec.Lines() {
		leak("log line", line)
	}
}

// TestOptionsRejected: bad options are refused with one clear sentence.
func TestOptionsRejected(t *testing.T) {
	cases := []struct {
		name string
		opts redis.RedisOptions
		want string
	}{
		{"nothing", redis.RedisOptions{}, "a URL or cluster nodes are required"},
		{"both", redis.RedisOptions{URL: "redis://127.0.0.1:1", ClusterNodes: []string{"127.0.0.1:2"}}, "not both"},
		{"scheme", redis.RedisOptions{URL: "http://127.0.0.1:1"}, "must start with redis:// or rediss://"},
		{"no host", redis.RedisOptions{URL: "redis://"}, "has no host"},
		{"port", redis.RedisOptions{URL: "redis://127.0.0.1:99999"}, "invalid port"},
		{"unescaped password", redis.RedisOptions{URL: "redis://u:a/b@127.0.0.1:1"}, "URL-escape those characters"},
		// go-redis reads these from the URL's query, and the store would
		// overwrite them without a word.
		{"URL read_timeout", redis.RedisOptions{URL: "redis://127.0.0.1:1/0?read_timeout=30s"}, "redis URL must not set read_timeout: the store sets the dial, read and write timeouts itself"},
		{"URL dial_timeout", redis.RedisOptions{URL: "redis://127.0.0.1:1?dial_timeout=1s"}, "must not set dial_timeout"},
		{"URL protocol", redis.RedisOptions{URL: "redis://127.0.0.1:1/0?protocol=3"}, "redis URL must not set protocol: the store speaks RESP2"},
		{"URL max_retries", redis.RedisOptions{URL: "redis://127.0.0.1:1/0?max_retries=5"}, "redis URL must not set max_retries: the store turns go-redis's retries off"},
		{"URL retry backoff", redis.RedisOptions{URL: "redis://127.0.0.1:1/0?min_retry_backoff=1s"}, "must not set min_retry_backoff"},
		{"URL pool_size beside PoolSize", redis.RedisOptions{URL: "redis://127.0.0.1:1/0?pool_size=5", PoolSize: 3}, "redis URL must not set pool_size when Options.PoolSize is set"},
		{"node query", redis.RedisOptions{ClusterNodes: []string{"127.0.0.1:2", "redis://127.0.0.1:1?client_name=x"}}, "cluster node 2 must not have query options"},
		{"node", redis.RedisOptions{ClusterNodes: []string{"127.0.0.1"}}, "must be host:port"},
		{"node port", redis.RedisOptions{ClusterNodes: []string{"127.0.0.1:x"}}, "invalid port"},
		{"node db", redis.RedisOptions{ClusterNodes: []string{"redis://127.0.0.1:1/3"}}, "only database 0"},
		{"prefix", redis.RedisOptions{URL: "redis://127.0.0.1:1", KeyPrefix: "a{b}"}, "key prefix"},
		{"prefix space", redis.RedisOptions{URL: "redis://127.0.0.1:1", KeyPrefix: "a b"}, "key prefix"},
		{"retention", redis.RedisOptions{URL: "redis://127.0.0.1:1", RetentionDays: -1}, "retention"},
		{"timeout", redis.RedisOptions{URL: "redis://127.0.0.1:1", ReadTimeout: -time.Second}, "must not be negative"},
		{"pool", redis.RedisOptions{URL: "redis://127.0.0.1:1", PoolSize: -1}, "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redis.NewRedis(tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v) succeeded", tc.opts)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestURLOptionsTheStoreDoesNotSet: go-redis's URL options that the
// store leaves alone are taken as they are.
func TestURLOptionsTheStoreDoesNotSet(t *testing.T) {
	s, err := redis.NewRedis(redis.RedisOptions{URL: "redis://127.0.0.1:1/2?pool_size=7&client_name=ledger&min_idle_conns=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := redis.ClientOptions(s)
	if o.PoolSize != 7 || o.ClientName != "ledger" || o.MinIdleConns != 1 || o.DB != 2 {
		t.Errorf("PoolSize %d, ClientName %q, MinIdleConns %d, DB %d; want 7, ledger, 1, 2", o.PoolSize, o.ClientName, o.MinIdleConns, o.DB)
	}
	if o.Protocol != 2 || o.MaxRetries > 0 || o.ReadTimeout != redis.DefaultTimeout {
		t.Errorf("Protocol %d, MaxRetries %d, ReadTimeout %v; want the store's own 2, no retries, %v", o.Protocol, o.MaxRetries, o.ReadTimeout, redis.DefaultTimeout)
	}
}

// TestInfoAndServiceLogLine: Info describes a database without secrets,
// so the Service logs "(Database)" per event; Open logs the connected line.
func TestInfoAndServiceLogLine(t *testing.T) {
	srv := redistest.Shared(t)
	rec := &testkit.LogRecorder{}
	log := slog.New(rec)
	s := open(t, redis.RedisOptions{URL: srv.URL(), Logger: log})
	if n := rec.Count(redis.ConnectedMessage); n != 1 {
		t.Errorf("Open logged the connected line %d times, want 1: %q", n, rec.Lines())
	}
	if got, want := s.Info(), (tokenledger.StoreInfo{Kind: "redis", Database: true, Location: srv.Addr()}); got != want {
		t.Errorf("Info = %+v, want %+v", got, want)
	}
	svc, err := tokenledger.NewService(tokenledger.Config{Store: s, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Log(context.Background(), []tokenledger.Event{{Model: "gpt-4o", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}); err != nil {
		t.Fatal(err)
	}
	if n := rec.Count("📊 Logged 15 tokens for model gpt-4o (Database)"); n != 1 {
		t.Errorf("the per-event line was logged %d times: %q", n, rec.Lines())
	}

	cl := redistest.SharedCluster(t)
	cs := open(t, redis.RedisOptions{ClusterNodes: cl.Addrs()})
	if got := cs.Info(); got.Location != strings.Join(cl.Addrs(), ",") || !got.Cluster {
		t.Errorf("cluster Info() = %+v, want its nodes and Cluster", got)
	}
}
