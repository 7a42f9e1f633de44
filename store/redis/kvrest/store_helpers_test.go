package kvrest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// quiet drops the store's log lines.
var quiet = slog.New(slog.DiscardHandler)

// front starts a REST front over the shared redis-server.
func front(t testing.TB) *kvresttest.Server {
	t.Helper()
	return kvresttest.Start(t, redistest.Shared(t).Addr(), kvresttest.Options{})
}

// testTimeout is the per-call timeout of stores in tests that are not
// about timeouts: under the race detector, on two cores shared with other
// work, an HTTP call through the front has been seen to take seconds, and
// such a test must not fail for that. Tests of the timeout set their own
// (or use the default, DefaultTimeout).
const testTimeout = 20 * time.Second

// open opens a store on f with the standard token under a fresh prefix and
// with testTimeout (unless opts sets them), and closes it when t ends.
func open(t testing.TB, f *kvresttest.Server, opts redis.KVRestOptions) *redis.Store {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = testTimeout
	}
	if opts.URL == "" {
		opts.URL = f.URL()
	}
	if opts.Token == "" && opts.ReadOnlyToken == "" {
		opts.Token = f.Token()
	}
	if opts.Prefix == "" {
		opts.Prefix = redistest.Prefix()
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := redis.OpenKVRest(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// noon is noon UTC of the real current day.
func noon() time.Time { return time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour) }

// event returns a valid event at ts.
func event(id string, ts time.Time, model, user, session string, p, c int64) tokenledger.Event {
	return tokenledger.Event{ID: id, Timestamp: ts, Model: model, UserID: user, SessionID: session,
		PromptTokens: p, CompletionTokens: c, TotalTokens: p + c}
}

// batch returns n events of today with ids "<p>-<i>".
func batch(p string, n int) []tokenledger.Event {
	now := noon()
	evs := make([]tokenledger.Event, n)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("%s-%d", p, i), now, "m", fmt.Sprintf("u%d", i%7), "s", 3, 2)
	}
	return evs
}

// today reads today's Day from s (zero Day when nothing was logged).
func today(t *testing.T, s tokenledger.Store) tokenledger.Day {
	t.Helper()
	d := tokenledger.DateOf(noon())
	days, err := s.Days(context.Background(), tokenledger.DayQuery{From: d, To: d, Users: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(days) == 0 {
		return tokenledger.Day{}
	}
	return days[0]
}

// wantUnavailable fails t unless err wraps ErrUnavailable, names host and
// does not contain any of the secrets.
func wantUnavailable(t *testing.T, what string, err error, host string, secrets ...string) {
	t.Helper()
	if !errors.Is(err, tokenledger.ErrUnavailable) {
		t.Errorf("%s: err = %v, want ErrUnavailable", what, err)
		return
	}
	wantClear(t, what, err, host, secrets...)
}

// wantClear fails t unless err names host and holds no secret.
func wantClear(t *testing.T, what string, err error, host string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	if !strings.Contains(err.Error(), host) {
		t.Errorf("%s: error %q does not name the host %s", what, err, host)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q holds a secret", what, err)
		}
	}
}
