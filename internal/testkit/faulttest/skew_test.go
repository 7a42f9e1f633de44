package faulttest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/fallback"
	"github.com/tokenledger/tokenledger/store/redis"
)

// skewed is one in-process instance (Service, fallback spool, Redis store)
// whose every clock is the machine's shifted by off.
type skewed struct {
	name string
	off  time.Duration
	svc  *tokenledger.Service
	fb   *fallback.Store
}

func (s *skewed) now() time.Time { return time.Now().Add(s.off).UTC() }

func newSkewed(t *testing.T, name string, srv *redistest.Instance, prefix string, off time.Duration) *skewed {
	t.Helper()
	s := &skewed{name: name, off: off}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const timeout = 300 * time.Millisecond
	db, err := redis.OpenRedis(context.Background(), redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix, Logger: quiet, Now: s.now,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	s.fb, err = fallback.New(db, t.TempDir(), fallback.Options{Logger: quiet, Now: s.now})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.fb.Close() })
	s.svc, err = tokenledger.NewService(tokenledger.Config{Store: s.fb, Now: s.now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// log logs n events named tag-<i> (ids and user tag) with timestamp ts (zero:
// the instance fills in its now) and says whether they were spooled.
func (s *skewed) log(t *testing.T, tag string, n int, ts time.Time) bool {
	t.Helper()
	evs := make([]tokenledger.Event, n)
	for i := range evs {
		evs[i] = tokenledger.Event{ID: fmt.Sprintf("%s-%d", tag, i), Model: "skew-model", UserID: tag, PromptTokens: 10, TotalTokens: 10, Timestamp: ts}
	}
	res, err := s.svc.Log(context.Background(), evs)
	if err != nil || res.Accepted != n {
		t.Fatalf("%s: logging %s: %+v, %v; want %d accepted", s.name, tag, res, err, n)
	}
	return res.Degraded
}

// users returns the requests per user of each day from..to, read through s.
func (s *skewed) users(t *testing.T, from, to tokenledger.Date) map[tokenledger.Date]map[string]int64 {
	t.Helper()
	days, err := s.fb.Days(context.Background(), tokenledger.DayQuery{From: from, To: to, Users: true})
	if err != nil {
		t.Fatalf("%s: reading days: %v", s.name, err)
	}
	out := map[tokenledger.Date]map[string]int64{}
	for _, d := range days {
		out[d.Date] = map[string]int64{}
		for u, tot := range d.Users {
			out[d.Date][u] = tot.RequestCount
		}
	}
	return out
}

// TestClockSkew: two instances on one real Redis whose clocks differ by
// four minutes, across midnight UTC, and both differ from Redis's by hours.
// An event's day is its own timestamp's (one without a timestamp gets the
// instance's now); after A resets, nothing B acknowledged before the reset
// comes back (from B's spool or read cache), and nothing B acknowledged
// after it is dropped: the reset marker and the spool are compared through
// the database's clock, never one instance's against another's.
func TestClockSkew(t *testing.T) {
	srv := redistest.Server(t)
	real := time.Now().UTC()
	midnight := real.Truncate(24 * time.Hour)
	for _, c := range []struct {
		name   string
		offA   time.Duration // A's clock is the machine's plus this
		skewB  time.Duration // B's is A's plus this
		crossB int           // B's date minus A's
	}{
		// A two minutes before the next midnight (hours ahead of Redis), B
		// four minutes ahead of A, already on the next day.
		{"B ahead", midnight.Add(24*time.Hour - 2*time.Minute).Sub(real), 4 * time.Minute, 1},
		// A two minutes after the last midnight (hours behind Redis), B four
		// minutes behind A, still on the day before.
		{"B behind", midnight.Add(2 * time.Minute).Sub(real), -4 * time.Minute, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := redistest.Prefix()
			a := newSkewed(t, "A", srv, prefix, c.offA)
			b := newSkewed(t, "B", srv, prefix, c.offA+c.skewB)
			dayA, dayB := tokenledger.DateOf(a.now()), tokenledger.DateOf(b.now())
			if dayB != dayA.AddDays(c.crossB) {
				t.Fatalf("the clocks do not cross midnight: A on %s, B on %s", dayA, dayB)
			}
			from, to := min(dayA, dayB), max(dayA, dayB)

			// Days follow each event's own timestamp; without one, the
			// instance's now. A's timestamp sent to B stays on A's day.
			a.log(t, "a-now", 1, time.Time{})
			b.log(t, "b-now", 1, time.Time{})
			b.log(t, "b-a-time", 1, a.now())
			want := map[tokenledger.Date]map[string]int64{dayA: {"a-now": 1, "b-a-time": 1}, dayB: {"b-now": 1}}
			for _, s := range []*skewed{a, b} {
				if got := s.users(t, from, to); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s reads %v, want %v", s.name, got, want)
				}
			}

			// B spools events during an outage; the database comes back,
			// and A resets it before B has delivered them.
			srv.Pause(t)
			if !b.log(t, "b-spooled-before", 3, time.Time{}) {
				t.Fatal("B's events during the outage were not spooled")
			}
			srv.Resume(t)
			time.Sleep(20 * time.Millisecond)
			if err := a.svc.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			// B keeps logging: into its spool (it holds events), then
			// during a second outage; A logs directly.
			time.Sleep(20 * time.Millisecond)
			b.log(t, "b-after", 2, time.Time{})
			srv.Pause(t)
			b.log(t, "b-spooled-after", 2, time.Time{})
			srv.Resume(t)
			a.log(t, "a-after", 1, time.Time{})
			if n, err := b.fb.Drain(context.Background()); err != nil || n != 7 {
				t.Fatalf("B's Drain = %d, %v; want its 7 spooled events taken out", n, err)
			}
			want = map[tokenledger.Date]map[string]int64{dayA: {"a-after": 1}, dayB: {"b-after": 2, "b-spooled-after": 2}}
			for _, s := range []*skewed{b, a} { // B's read cache first: it was filled before the reset
				if got := s.users(t, from, to); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("after A's reset %s reads %v, want %v (only what was logged after the reset, each once)", s.name, got, want)
				}
			}
		})
	}
}
