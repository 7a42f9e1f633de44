package fallback

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// stalled is a flaky database whose Add, once armed, waits until released
// (or its ctx ends): a delivery that takes long, as a large spool's does.
type stalled struct {
	*flaky
	armed   chan struct{} // closed: Add waits for release
	entered chan struct{} // receives when an armed Add starts waiting
	release chan struct{}
}

func (d *stalled) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	evs := batch.Events()
	select {
	case <-d.armed:
		d.entered <- struct{}{}
		select {
		case <-d.release:
		case <-ctx.Done():
			return tokenledger.AddResult{}, ctx.Err()
		}
	default:
	}
	return d.flaky.Add(ctx, storetest.Batch(evs))
}

// stalledWithSpool returns a fallback Store (ReadWait 200 ms) over a
// stalled database, with n events spooled during an outage; the database
// is back and armed: its Add now waits for db.release. The Store is closed
// at the end of the test.
func stalledWithSpool(t *testing.T, n int) (*Store, *stalled, time.Time) {
	t.Helper()
	db := &stalled{flaky: newFlaky(), armed: make(chan struct{}), entered: make(chan struct{}, 8), release: make(chan struct{})}
	s, err := New(db, t.TempDir(), Options{Logger: quiet, ReadWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	now := time.Now().UTC()
	db.down.Store(true)
	if res, err := s.Add(context.Background(), storetest.Batch(events("spooled", n, now))); err != nil || !res.Degraded {
		t.Fatalf("Add during the outage: %+v, %v", res, err)
	}
	db.down.Store(false)
	close(db.armed)
	return s, db, now
}

// A read while spooled events are being delivered waits for them at most
// ReadWait, then answers 503-style with the count, instead of waiting out
// the delivery (which, after a long outage, can take minutes).
func TestReadDuringLongDeliveryIsRefusedPromptly(t *testing.T) {
	ctx := context.Background()
	s, db, now := stalledWithSpool(t, 10)

	// A delivery in progress (the background replayer's, say) holds the
	// spool for as long as the database takes.
	drained := make(chan error, 1)
	go func() {
		_, err := s.Drain(ctx)
		drained <- err
	}()
	<-db.entered

	q := tokenledger.DayQuery{From: tokenledger.DateOf(now), To: tokenledger.DateOf(now)}
	read := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := s.Days(ctx, q)
		read <- err
	}()
	select {
	case err := <-read:
		if !errors.Is(err, tokenledger.ErrUnavailable) || !strings.Contains(err.Error(), "10 events from the local spool are still being delivered") {
			t.Fatalf("read during delivery: err = %v, want ErrUnavailable saying 10 events are still being delivered", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("read took %v, want about ReadWait (200ms)", d)
		}
	case <-time.After(10 * time.Second):
		close(db.release)
		t.Fatal("read still waiting for the delivery after 10s; ReadWait is 200ms")
	}

	// A caller's own shorter deadline is kept too, and says it ran out.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Days(short, q); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read with a 50ms deadline during delivery: err = %v, want its deadline", err)
	}

	close(db.release)
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if _, req := total(t, s, now); req != 10 {
		t.Fatalf("requestCount after the delivery = %d, want 10", req)
	}
}

// A read whose own delivery attempt gets no answer from the database
// within ReadWait says the database is unreachable (not that delivery is
// under way), with the count.
func TestReadWithAHungDatabaseSaysUnreachable(t *testing.T) {
	ctx := context.Background()
	s, db, now := stalledWithSpool(t, 3) // the database takes the call and never answers
	defer close(db.release)

	d := tokenledger.DateOf(now)
	_, err := s.Days(ctx, tokenledger.DayQuery{From: d, To: d})
	if !errors.Is(err, tokenledger.ErrUnavailable) || !strings.Contains(err.Error(), "The database is unreachable and 3 events wait in the local spool") {
		t.Fatalf("read with a hung database: err = %v, want ErrUnavailable saying it is unreachable and 3 events wait", err)
	}
}

// After Close, a delivery (the background replayer's last wake-up) does
// not call the closed database, and so logs no refusal.
func TestDrainAfterCloseDoesNotCallTheDatabase(t *testing.T) {
	ctx := context.Background()
	db := &counting{flaky: newFlaky()}
	var logs strings.Builder
	s, err := New(db, t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	db.down.Store(true)
	if _, err := s.Add(ctx, storetest.Batch(events("left", 2, now))); err != nil {
		t.Fatal(err)
	}
	db.down.Store(false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := db.calls.Load()
	n, err := s.Drain(ctx)
	if n != 0 || !errors.Is(err, tokenledger.ErrClosed) {
		t.Errorf("Drain after Close = %d, %v; want 0, ErrClosed", n, err)
	}
	if got := db.calls.Load() - calls; got != 0 {
		t.Errorf("Drain after Close called the closed database's Add %d times", got)
	}
	if strings.Contains(logs.String(), "The database refused") {
		t.Errorf("Drain after Close logged a refusal:\n%s", logs.String())
	}
}

// counting is a flaky database that counts its Add calls.
type counting struct {
	*flaky
	calls atomic.Int32
}

func (d *counting) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	evs := batch.Events()
	d.calls.Add(1)
	return d.flaky.Add(ctx, storetest.Batch(evs))
}
