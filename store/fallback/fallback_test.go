package fallback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// flaky is a memstore whose availability a test switches. It is a unit-test
// stand-in; the fault tests with a real redis-server are the evidence that
// fallback works against a real database.
type flaky struct {
	*memstore.Store
	down      atomic.Bool
	applyDown atomic.Bool // apply the write, then report failure (a lost reply)
	mu        sync.Mutex
	seen      []string // ids in the order Add received them
}

var errDown = fmt.Errorf("%w: connection refused", tokenledger.ErrUnavailable)

func (f *flaky) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	evs := batch.Events()
	if f.down.Load() {
		return tokenledger.AddResult{}, errDown
	}
	res, err := f.Store.Add(ctx, storetest.Batch(evs))
	if err == nil {
		f.mu.Lock()
		for _, e := range evs {
			f.seen = append(f.seen, e.ID)
		}
		f.mu.Unlock()
	}
	if f.applyDown.Load() {
		return tokenledger.AddResult{}, errDown
	}
	return res, err
}

func (f *flaky) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.Days(ctx, q)
}

func (f *flaky) Check(ctx context.Context) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Check(ctx)
}

func (f *flaky) Info() tokenledger.StoreInfo {
	return tokenledger.StoreInfo{Kind: "flaky", Database: true}
}

var quiet = slog.New(slog.DiscardHandler)

func newFlaky() *flaky { return &flaky{Store: memstore.New(nil, 0)} }

func events(prefix string, n int, at time.Time) []tokenledger.Event {
	evs := make([]tokenledger.Event, n)
	for i := range evs {
		evs[i] = tokenledger.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Timestamp: at, Model: "m", UserID: fmt.Sprintf("u%d", i%7),
			PromptTokens: int64(i), CompletionTokens: 1, TotalTokens: int64(i) + 1, Metadata: []byte(`{"k":1}`)}
	}
	return evs
}

func total(t *testing.T, st tokenledger.Store, at time.Time) (tokens, requests int64) {
	t.Helper()
	d := tokenledger.DateOf(at)
	days, err := st.Days(context.Background(), tokenledger.DayQuery{From: d, To: d})
	if err != nil {
		t.Fatalf("Days: %v", err)
	}
	for _, day := range days {
		tokens += day.TotalTokens
		requests += day.RequestCount
	}
	return tokens, requests
}

func TestConformanceWithHealthyDatabase(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store {
		s, err := New(memstore.New(o.Now, o.RetentionDays), t.TempDir(), Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOutageSpoolsAndDeliversExactlyOnce(t *testing.T) {
	ctx := context.Background()
	db := newFlaky()
	var logs strings.Builder
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	s, err := New(db, t.TempDir(), Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()

	before := events("before", 10, now)
	if res, err := s.Add(ctx, storetest.Batch(before)); err != nil || res.Degraded || res.Accepted() != 10 {
		t.Fatalf("healthy Add: %+v, %v", res, err)
	}

	db.down.Store(true)
	during := events("during", 50, now)
	for i := 0; i < len(during); i += 10 {
		res, err := s.Add(ctx, storetest.Batch(during[i:i+10]))
		if err != nil {
			t.Fatalf("Add during the outage: %v", err)
		}
		if !res.Degraded || res.Accepted() != 10 {
			t.Fatalf("Add during the outage: %+v, want 10 accepted, degraded", res)
		}
	}
	// A re-send of an event already in the database is spooled too, and
	// resolved as a duplicate on delivery.
	if _, err := s.Add(ctx, storetest.Batch(before[:1])); err != nil {
		t.Fatal(err)
	}
	if st := s.FallbackStatus(); !st.Active || st.PendingEvents != 51 {
		t.Fatalf("status = %+v, want active with 51 pending", st)
	}
	_, err = s.Days(ctx, tokenledger.DayQuery{From: tokenledger.DateOf(now), To: tokenledger.DateOf(now)})
	if !errors.Is(err, tokenledger.ErrUnavailable) || !strings.Contains(err.Error(), "51 events wait in the local spool") {
		t.Fatalf("read during the outage: err = %v, want ErrUnavailable naming 51 spooled events", err)
	}

	db.down.Store(false)
	n, err := s.Drain(ctx)
	if err != nil || n != 51 {
		t.Fatalf("Drain = %d, %v; want 51, nil", n, err)
	}
	if st := s.FallbackStatus(); st.Active || st.PendingEvents != 0 {
		t.Fatalf("after Drain status = %+v", st)
	}
	_, req := total(t, s, now)
	if req != 60 {
		t.Errorf("requestCount = %d, want 60 (10 before + 50 during, the re-send once)", req)
	}
	// Delivered in the order they were spooled.
	db.mu.Lock()
	seen := db.seen[10:]
	db.mu.Unlock()
	for i := range 50 {
		if seen[i] != during[i].ID {
			t.Fatalf("delivery order: event %d is %s, want %s", i, seen[i], during[i].ID)
		}
	}
	out := logs.String()
	for _, want := range []string{"Database unavailable", "Spool drained: delivered 51 events to the database (50 new, 1 already there)", "fallback ended"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestLostReplyIsCountedOnce(t *testing.T) {
	ctx := context.Background()
	db := newFlaky()
	s, err := New(db, t.TempDir(), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	db.applyDown.Store(true) // the database applies the write but the reply is lost
	evs := events("lost", 20, now)
	res, err := s.Add(ctx, storetest.Batch(evs))
	if err != nil || !res.Degraded {
		t.Fatalf("Add = %+v, %v; want degraded", res, err)
	}
	db.applyDown.Store(false)
	if _, err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, req := total(t, s, now); req != 20 {
		t.Errorf("requestCount = %d, want 20", req)
	}
}

func TestSpoolSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := newFlaky()
	db.down.Store(true)
	s, err := New(db, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 5 {
		if _, err := s.Add(ctx, storetest.Batch(events(fmt.Sprintf("r%d", i), 7, now))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.spool.Close(); err != nil { // the process ends; the database store lives on
		t.Fatal(err)
	}
	db.down.Store(false)
	s2, err := New(db, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if st := s2.FallbackStatus(); st.PendingEvents != 35 || !st.Active {
		t.Fatalf("after restart status = %+v, want 35 pending", st)
	}
	ctx2, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s2.Run(ctx2) }()
	deadline := time.Now().Add(10 * time.Second)
	for s2.FallbackStatus().Active && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if _, req := total(t, s2, now); req != 35 {
		t.Errorf("after the background replayer: requestCount = %d, want 35", req)
	}
}

func TestRedeliveryAfterCrashBeforeAckIsHarmless(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := newFlaky()
	db.down.Store(true)
	s, err := New(db, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	evs := events("crash", 30, now)
	if _, err := s.Add(ctx, storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	// The replayer delivered the events, then the process died before the
	// cursor moved: the database has them and the spool still does.
	db.down.Store(false)
	if _, err := db.Store.Add(ctx, storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	s.spool.Close()
	s2, err := New(db, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n, err := s2.Drain(ctx); err != nil || n != 30 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	if _, req := total(t, s2, now); req != 30 {
		t.Errorf("requestCount = %d, want 30", req)
	}
}

func TestSegmentsRotateAndDeliveredOnesAreRemoved(t *testing.T) {
	old := segmentLimit
	segmentLimit = 2048
	defer func() { segmentLimit = old }()
	ctx := context.Background()
	dir := t.TempDir()
	db := newFlaky()
	db.down.Store(true)
	s, err := New(db, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	for i := range 40 {
		if _, err := s.Add(ctx, storetest.Batch(events(fmt.Sprintf("seg%d", i), 5, now))); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.spool"))
	if len(segs) < 3 {
		t.Fatalf("%d segments after 40 records, want several", len(segs))
	}
	db.down.Store(false)
	if n, err := s.Drain(ctx); err != nil || n != 200 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "*.spool"))
	if len(segs) != 1 {
		t.Errorf("%d segments remain after delivery, want only the active one: %v", len(segs), segs)
	}
	if _, req := total(t, s, now); req != 200 {
		t.Errorf("requestCount = %d, want 200", req)
	}
}

func TestDamagedSpoolIsRefusedAndLeftAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := newFlaky()
	db.down.Store(true)
	s, err := New(db, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s.Add(ctx, storetest.Batch(events(fmt.Sprintf("d%d", i), 2, time.Now().UTC())))
	}
	s.Close()
	seg := filepath.Join(dir, fmt.Sprintf("%016d.spool", 1))
	b, _ := os.ReadFile(seg)
	b[20] ^= 0x02 // damage the first of three records
	os.WriteFile(seg, b, 0o644)
	_, err = New(db, dir, Options{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), "byte offset 0") {
		t.Fatalf("opening a damaged spool: err = %v, want an error naming %s and the offset", err, seg)
	}
	if after, _ := os.ReadFile(seg); string(after) != string(b) {
		t.Error("the damaged spool was changed")
	}
}

func TestTornSpoolTailIsCut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := newFlaky()
	db.down.Store(true)
	s, _ := New(db, dir, Options{Logger: quiet})
	s.Add(ctx, storetest.Batch(events("t", 4, time.Now().UTC())))
	s.Close()
	seg := filepath.Join(dir, fmt.Sprintf("%016d.spool", 1))
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`0badc0de [{"id":"half`)
	f.Close()
	s2, err := New(db, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := s2.FallbackStatus().PendingEvents; n != 4 {
		t.Errorf("pending after a torn tail = %d, want 4", n)
	}
}

func TestSecondProcessIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := New(newFlaky(), dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = New(newFlaky(), dir, Options{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "in use by another tokenledger process") {
		t.Errorf("second open: err = %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestCancelledAddsKeepTheCountExact: Adds whose context ends while the
// spool commits (a client that gives up during the fsync) either stored
// their events or did not, and the spool's pending count says which:
// after the database returns and the spool drains, nothing is pending and
// the database holds exactly the events of the Adds that succeeded.
func TestCancelledAddsKeepTheCountExact(t *testing.T) {
	db := newFlaky()
	db.down.Store(true)
	s, err := New(db, t.TempDir(), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	var acked, cancelled atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(3000))*time.Microsecond)
				_, err := s.Add(ctx, storetest.Batch(events(fmt.Sprintf("c%d-%d", g, i), 1, now)))
				cancel()
				switch {
				case err == nil:
					acked.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					cancelled.Add(1)
				default:
					t.Errorf("Add: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if cancelled.Load() == 0 {
		t.Log("no Add was cancelled this time; the check below still holds")
	}
	if got := s.spool.Pending(); int64(got) != acked.Load() {
		t.Errorf("pending = %d, want the %d acknowledged events", got, acked.Load())
	}
	db.down.Store(false)
	if _, err := s.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.spool.Pending(); got != 0 {
		t.Errorf("after a full drain %d events are pending, want 0", got)
	}
	if _, requests := total(t, db, now); requests != acked.Load() {
		t.Errorf("the database holds %d events, want the %d acknowledged (%d Adds were cancelled)", requests, acked.Load(), cancelled.Load())
	}
}
