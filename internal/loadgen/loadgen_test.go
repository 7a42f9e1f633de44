package loadgen

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// faulty is a Target on a real Service over a memory store, with faults
// injected by the test.
type faulty struct {
	*Service
	calls atomic.Int64
	// fault, when not nil, decides what happens to call number n (from 1):
	// it may change the events that reach the store and the answer.
	fault func(n int64, events []tokenledger.Event, store func([]tokenledger.Event) Answer) Answer
}

func newFaulty(t *testing.T) *faulty {
	t.Helper()
	svc, err := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &faulty{Service: NewService(svc, "memory")}
}

func (f *faulty) Send(ctx context.Context, body []byte, events func() []tokenledger.Event) Answer {
	n := f.calls.Add(1)
	store := func(evs []tokenledger.Event) Answer {
		return f.Service.Send(ctx, body, func() []tokenledger.Event { return evs })
	}
	evs := events()
	if f.fault == nil {
		return store(evs)
	}
	return f.fault(n, evs, store)
}

func baseConfig() Config {
	return Config{Clients: 4, Events: 2000, Batch: 1, Models: 3, Users: 7, Sessions: 5, Verify: true,
		ResendAttempts: 3, SettleTimeout: 10 * time.Second}
}

func TestCorrectServiceVerifies(t *testing.T) {
	for _, batch := range []int{1, 10} {
		f := newFaulty(t)
		cfg := baseConfig()
		cfg.Batch, cfg.Resend = batch, 0.1
		res, err := Run(context.Background(), f, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verify == nil || !res.Verify.OK {
			t.Fatalf("batch %d: verification: %+v", batch, res.Verify)
		}
		if res.Events != 2000 || res.ResentEvents == 0 || res.Stored+res.ResentEvents != 2000 || res.Accepted != res.Stored || res.Duplicates != res.ResentEvents {
			t.Errorf("batch %d: events %d, re-sent %d, stored %d, accepted %d, duplicates %d", batch, res.Events, res.ResentEvents, res.Stored, res.Accepted, res.Duplicates)
		}
		if res.Expected.RequestCount != res.Stored {
			t.Errorf("expected %d events, stored %d", res.Expected.RequestCount, res.Stored)
		}
	}
}

func TestDroppingServiceFails(t *testing.T) {
	f := newFaulty(t)
	// Every tenth event is answered as accepted and not stored.
	var seen atomic.Int64
	f.fault = func(_ int64, evs []tokenledger.Event, store func([]tokenledger.Event) Answer) Answer {
		var keep []tokenledger.Event
		dropped := 0
		for _, e := range evs {
			if seen.Add(1)%10 == 0 {
				dropped++
				continue
			}
			keep = append(keep, e)
		}
		if len(keep) == 0 {
			return Answer{Outcome: Stored, Accepted: dropped}
		}
		a := store(keep)
		a.Accepted += dropped
		return a
	}
	cfg := baseConfig()
	res, err := Run(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verify
	if v.OK || v.Inconclusive || !strings.Contains(v.Message, "200 events missing") {
		t.Fatalf("verification: %+v", v)
	}
}

func TestDoubleCountingServiceFails(t *testing.T) {
	f := newFaulty(t)
	f.fault = func(n int64, evs []tokenledger.Event, store func([]tokenledger.Event) Answer) Answer {
		if n%50 == 0 { // count this one again under another id
			e := evs[0]
			e.ID += "-again"
			store([]tokenledger.Event{e})
		}
		return store(evs)
	}
	res, err := Run(context.Background(), f, baseConfig())
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Verify; v.OK || !strings.Contains(v.Message, "40 events too many") {
		t.Fatalf("verification: %+v", v)
	}
}

func TestUnknownOutcomesAreSettled(t *testing.T) {
	f := newFaulty(t)
	// Every 7th request is stored but answered 503; every 11th is not
	// stored and times out. A correct service: the check must pass.
	f.fault = func(n int64, evs []tokenledger.Event, store func([]tokenledger.Event) Answer) Answer {
		switch {
		case n%7 == 0:
			store(evs)
			return Answer{Outcome: Unknown, Kind: "HTTP 503"}
		case n%11 == 0:
			return Answer{Outcome: Unknown, Kind: "timeout"}
		case n%13 == 0:
			return Answer{Outcome: Rejected, Kind: "HTTP 429"}
		}
		return store(evs)
	}
	cfg := baseConfig()
	cfg.Resend, cfg.ResendAttempts = 0.05, 20 // 23 % of re-sends fail too
	res, err := Run(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verify.OK {
		t.Fatalf("verification: %+v", res.Verify)
	}
	if res.UnknownAfterLoad == 0 || res.Unknown != 0 || res.Errors["HTTP 503"] == 0 || res.Errors["timeout"] == 0 || res.Errors["HTTP 429"] == 0 {
		t.Errorf("unknown after load %d, left %d, errors %v", res.UnknownAfterLoad, res.Unknown, res.Errors)
	}
	if res.Rejected == 0 {
		t.Errorf("no event stayed rejected")
	}
}

func TestUnsettledIsInconclusive(t *testing.T) {
	f := newFaulty(t)
	var mu sync.Mutex
	stuck := map[string]bool{}
	// Requests 5, 10, ... store their events and never answer again for
	// them: the re-sends time out too.
	f.fault = func(n int64, evs []tokenledger.Event, store func([]tokenledger.Event) Answer) Answer {
		mu.Lock()
		defer mu.Unlock()
		if n%5 == 0 || stuck[evs[0].ID] {
			if !stuck[evs[0].ID] {
				store(evs)
			}
			stuck[evs[0].ID] = true
			return Answer{Outcome: Unknown, Kind: "timeout"}
		}
		return store(evs)
	}
	cfg := baseConfig()
	cfg.ResendAttempts = 2
	res, err := Run(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Verify; v.OK || !v.Inconclusive || !strings.HasPrefix(v.Message, "inconclusive: 400 events") {
		t.Fatalf("verification: %+v", v)
	}
}

func TestDurationAndStop(t *testing.T) {
	f := newFaulty(t)
	cfg := baseConfig()
	cfg.Events, cfg.Duration = 0, 200*time.Millisecond
	var calls atomic.Int64
	cfg.Progress, cfg.ProgressEvery = func(Progress) { calls.Add(1) }, 20*time.Millisecond
	start := time.Now()
	res, err := Run(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second || res.Events == 0 || !res.Verify.OK || calls.Load() == 0 {
		t.Fatalf("took %v, %d events, verify %+v, %d progress calls", took, res.Events, res.Verify, calls.Load())
	}

	stop := make(chan struct{})
	cfg.Duration, cfg.Stop = time.Hour, stop
	time.AfterFunc(100*time.Millisecond, func() { close(stop) })
	res, err = Run(context.Background(), f, cfg)
	if err != nil || !res.Verify.OK || res.Seconds > 5 {
		t.Fatalf("stopped run: %v, %+v, %.1fs", err, res.Verify, res.Seconds)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(tc.q)
		if d := float64(got-tc.want) / float64(tc.want); d < -0.02 || d > 0.02 {
			t.Errorf("quantile(%g) = %v, want %v within 2 %%", tc.q, got, tc.want)
		}
	}
	if h.max != time.Millisecond || h.mean() != 500500*time.Nanosecond {
		t.Errorf("max %v mean %v", h.max, h.mean())
	}
	for _, v := range []uint64{0, 1, 127, 128, 129, 1 << 20, 1<<20 + 12345, 1<<63 + 5} {
		i := bucketOf(v)
		if up := upperOf(i); up < v || (i > 0 && upperOf(i-1) >= v) {
			t.Errorf("value %d: bucket %d spans (%d, %d]", v, i, upperOf(i-1), up)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100000: "100,000"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestEventsAreValidAndRepeatable(t *testing.T) {
	n := newNames("r1", 3, 4, 5)
	k := key{2, 77}
	s := specOf(42, k, 3, 4, 5)
	if specOf(42, k, 3, 4, 5) != s {
		t.Fatal("specOf is not a pure function")
	}
	body := n.appendJSON(nil, k, s, "2026-01-02T03:04:05.000Z")
	evs, err := tokenledger.DecodeEvents(body)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	want := n.event(k, s, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if evs[0].ID != want.ID || evs[0].Model != want.Model || evs[0].UserID != want.UserID || evs[0].TotalTokens != want.TotalTokens || evs[0].Cost != want.Cost || !evs[0].Timestamp.Equal(want.Timestamp) {
		t.Errorf("decoded %+v, want %+v", evs[0], want)
	}
	if n.index(n.models, "m", "bench-r1-m2") != 2 || n.index(n.models, "m", "bench-r1-m3") != -1 || n.index(n.users, "u", "bench-r2-u1") != -1 {
		t.Error("index")
	}
}

// TestNothingListening: a URL where nothing answers is reported at once,
// before any load, instead of being retried as if the service were busy.
func TestNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	target, err := NewHTTP("http://"+addr, "", 4, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.SettleTimeout = time.Minute
	start := time.Now()
	res, err := Run(context.Background(), target, cfg)
	if err == nil || !strings.Contains(err.Error(), "reading the totals before the run") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Run = %v, %v; want the refused connection reported", res, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v to report that nothing listens", took)
	}
}
