package fallback

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestRefusedDeliveryIsKeptAndShown: events spooled during an outage that
// the database then refuses for a reason other than an outage (here one
// of tokenledger's keys holds a foreign value: WRONGTYPE) are neither
// dropped nor retried in silence. They stay in the spool; the log says
// why (once, not on every retry); /api/test's fallback status carries the
// reason; reads answer 503 saying the database refuses them. Once the
// database is fixed, delivery resumes by itself and every event counts
// exactly once. (A real redis-server: the refusal is Redis's own.)
func TestRefusedDeliveryIsKeptAndShown(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Server(t)
	var logs bytes.Buffer
	s, db := overRedis(t, srv, redistest.Prefix(), t.TempDir(), &logs)
	now := time.Now().UTC()
	yesterday := now.AddDate(0, 0, -1)
	keys, err := redis.NewKeys(db.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	foreign := keys.Day(tokenledger.DateOf(yesterday), redis.KindTotals)

	// Someone has written a string where yesterday's totals hash belongs.
	if _, err := redistest.Command(srv.Addr(), "SET", foreign, "not ours"); err != nil {
		t.Fatal(err)
	}
	// An outage: the calls time out and the events are spooled. (Redis
	// runs the timed-out calls when it resumes: today's count then, and
	// the redelivery finds them there.)
	srv.Pause(t)
	for _, evs := range [][]tokenledger.Event{events("late", 3, yesterday), events("today", 5, now)} {
		if res, err := s.Add(ctx, storetest.Batch(evs)); err != nil || !res.Degraded {
			t.Fatalf("Add during the outage: %+v, %v; want spooled", res, err)
		}
	}
	srv.Resume(t)

	for range 3 {
		if _, err := s.Drain(ctx); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Fatalf("Drain = %v, want the database's WRONGTYPE refusal", err)
		}
	}
	st := s.FallbackStatus()
	if !st.Active || st.PendingEvents != 8 || !strings.Contains(st.DeliveryError, "WRONGTYPE") {
		t.Errorf("status = %+v, want active, 8 pending and the refusal", st)
	}
	if n := strings.Count(logs.String(), "The database refused 8 spooled events"); n != 1 {
		t.Errorf("the refusal was logged %d times in 3 attempts, want once:\n%s", n, logs.String())
	}
	d := tokenledger.DateOf(now)
	_, err = s.Days(ctx, tokenledger.DayQuery{From: d, To: d})
	var ue *tokenledger.UnavailableError
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, "The database refuses the 8 events that wait in the local spool") {
		t.Errorf("read while refused: %v, want the 503 sentence about the refusal", err)
	}

	// The operator removes the foreign value; the next attempt delivers.
	if _, err := redistest.Command(srv.Addr(), "DEL", foreign); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Drain(ctx); err != nil || n != 8 {
		t.Fatalf("Drain after the fix = %d, %v; want 8 delivered", n, err)
	}
	if st := s.FallbackStatus(); st.Active || st.PendingEvents != 0 || st.DeliveryError != "" {
		t.Errorf("status after the fix = %+v, want inactive, empty, no error", st)
	}
	if !strings.Contains(logs.String(), "delivery resumed") {
		t.Errorf("no log line says delivery resumed:\n%s", logs.String())
	}
	for _, at := range []time.Time{yesterday, now} {
		d := tokenledger.DateOf(at)
		days, err := s.Days(ctx, tokenledger.DayQuery{From: d, To: d})
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]int64{true: 3, false: 5}[at.Equal(yesterday)]
		if len(days) != 1 || days[0].RequestCount != want {
			t.Errorf("day %s: %+v, want %d requests", d, days, want)
		}
	}
}

// overRedis opens a fallback Store, its spool in dir and its log in logs,
// over a Redis store on srv under prefix whose calls time out after
// 300 ms (a paused server is an outage at once). It is closed at the
// test's end.
func overRedis(t *testing.T, srv *redistest.Instance, prefix, dir string, logs *bytes.Buffer) (*Store, *redis.Store) {
	t.Helper()
	const timeout = 300 * time.Millisecond
	db, err := redis.OpenRedis(context.Background(), redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix, Logger: quiet,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db, dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, db
}

// refusing is a flaky database that can refuse writes for a reason that is
// not an outage, as Redis does with WRONGTYPE.
type refusing struct {
	*flaky
	refuse atomic.Bool
}

func (d *refusing) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	evs := batch.Events()
	if d.refuse.Load() {
		return tokenledger.AddResult{}, errors.New("WRONGTYPE tokenledger key holds a string, not a hash")
	}
	return d.flaky.Add(ctx, storetest.Batch(evs))
}

// TestResetForgetsARefusal: Reset empties the spool whose events the
// database refused, so the refusal goes with them; a later plain outage
// must not be shown (in /api/test, or a read's 503) as the database
// refusing events.
func TestResetForgetsARefusal(t *testing.T) {
	ctx := context.Background()
	db := &refusing{flaky: newFlaky()}
	s, err := New(db, t.TempDir(), Options{Logger: quiet, ReadWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	db.down.Store(true)
	if _, err := s.Add(ctx, storetest.Batch(events("a", 2, now))); err != nil {
		t.Fatal(err)
	}
	db.down.Store(false)
	db.refuse.Store(true)
	if _, err := s.Drain(ctx); err == nil {
		t.Fatal("Drain: want the refusal")
	}
	if st := s.FallbackStatus(); st.DeliveryError == "" {
		t.Fatalf("status %+v after the refusal, want its reason (the test needs it)", st)
	}
	db.refuse.Store(false)
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	db.down.Store(true)
	if _, err := s.Add(ctx, storetest.Batch(events("b", 3, now))); err != nil {
		t.Fatal(err)
	}
	if st := s.FallbackStatus(); st.DeliveryError != "" {
		t.Errorf("status during a plain outage after Reset %+v, want no deliveryError", st)
	}
	// A read while another caller's delivery holds the spool.
	s.deliver <- struct{}{}
	_, err = s.Days(ctx, tokenledger.DayQuery{From: tokenledger.DateOf(now), To: tokenledger.DateOf(now)})
	<-s.deliver
	if err == nil || strings.Contains(err.Error(), "refuses") {
		t.Errorf("read during a plain outage after Reset: %v, want a 503 that does not say the database refuses events", err)
	}
}

// TestEventTheDatabaseCanNeverTakeIsSetAside: an event spooled during an
// outage that the database then refuses for itself — it would take a day's
// counter past 2^62, which the database answers with the same refusal
// every time — cannot block the events behind it for good. Delivery
// counts every other event of its batch, keeps the refused one durably in
// the spool's rejected file (it was acknowledged, so it is not thrown
// away), logs its id and why, shows the count in the fallback status, and
// fallback ends. (A real redis-server: the refusal is the script's own.)
func TestEventTheDatabaseCanNeverTakeIsSetAside(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Server(t)
	var logs bytes.Buffer
	dir := t.TempDir()
	s, db := overRedis(t, srv, redistest.Prefix(), dir, &logs)
	now := time.Now().UTC()
	keys, err := redis.NewKeys(db.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	// Today's cost is 1 µ$ short of the bound: an event costing 0.000001
	// dollars (1,000 nano-dollars) or more can never be counted today.
	totals := keys.Day(tokenledger.DateOf(now), redis.KindTotals)
	if _, err := redistest.Command(srv.Addr(), "HSET", totals, "$", "4611686018427386904"); err != nil {
		t.Fatal(err)
	}
	if _, err := redistest.Command(srv.Addr(), "EXPIRE", totals, "86400"); err != nil {
		t.Fatal(err)
	}
	batch := events("ok", 5, now)
	batch[2].ID, batch[2].Cost = "too-costly", 1000
	srv.Pause(t)
	if res, err := s.Add(ctx, storetest.Batch(batch)); err != nil || !res.Degraded {
		t.Fatalf("Add during the outage: %+v, %v; want spooled", res, err)
	}
	if res, err := s.Add(ctx, storetest.Batch(events("later", 3, now))); err != nil || !res.Degraded {
		t.Fatalf("Add during the outage: %+v, %v; want spooled", res, err)
	}
	srv.Resume(t)

	if n, err := s.Drain(ctx); err != nil || n != 8 {
		t.Fatalf("Drain = %d, %v; want all 8 spooled events handled", n, err)
	}
	st := s.FallbackStatus()
	if st.Active || st.PendingEvents != 0 || st.RejectedEvents != 1 || st.DeliveryError != "" {
		t.Errorf("status %+v, want fallback ended, nothing pending, 1 rejected", st)
	}
	d := tokenledger.DateOf(now)
	days, err := s.Days(ctx, tokenledger.DayQuery{From: d, To: d})
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 1 || days[0].RequestCount != 7 {
		t.Errorf("today %+v, want the 7 other events counted", days)
	}
	for _, want := range []string{`too-costly`, "would overflow", "rejected"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	kept, err := os.ReadFile(filepath.Join(dir, RejectedFile))
	if err != nil || !strings.Contains(string(kept), `"id":"too-costly"`) || !strings.Contains(string(kept), "would overflow") {
		t.Errorf("rejected file: %q, %v; want the event and the reason", kept, err)
	}

	// The count survives a restart, read back from the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := overRedis(t, srv, db.Prefix(), dir, new(bytes.Buffer))
	if st := s2.FallbackStatus(); st.RejectedEvents != 1 {
		t.Errorf("after a restart: status %+v, want 1 rejected", st)
	}
}
