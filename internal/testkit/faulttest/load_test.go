package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// event is one usage event as the tests send it: every field the
// aggregates keep, and an id so that it can be sent again.
type event struct {
	ID        string
	Timestamp time.Time
	Model     string
	User      string // "" for none
	Session   string // "" for none
	Prompt    int64
	Complete  int64
	CacheRead int64
	Cost      tokenledger.Nanos
}

func (e event) date() tokenledger.Date { return tokenledger.DateOf(e.Timestamp) }

func (e event) total() int64 { return e.Prompt + e.Complete }

// json writes the event as the API takes it.
func (e event) json(b *strings.Builder) {
	fmt.Fprintf(b, `{"id":%q,"timestamp":%q,"model":%q,"promptTokens":%d,"completionTokens":%d`,
		e.ID, e.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"), e.Model, e.Prompt, e.Complete)
	if e.CacheRead > 0 {
		fmt.Fprintf(b, `,"cacheReadTokens":%d`, e.CacheRead)
	}
	if e.Cost > 0 {
		fmt.Fprintf(b, `,"costUsd":%d.%09d`, e.Cost/1e9, e.Cost%1e9)
	}
	if e.User != "" {
		fmt.Fprintf(b, `,"userId":%q`, e.User)
	}
	if e.Session != "" {
		fmt.Fprintf(b, `,"sessionId":%q`, e.Session)
	}
	b.WriteByte('}')
}

func batchJSON(events []event) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		e.json(&b)
	}
	b.WriteByte(']')
	return b.String()
}

// genEvents makes n events with ids "<prefix>-<i>", deterministic for a
// seed, spread over the last `days` UTC days (today included; every
// timestamp is at least a minute in the past), 7 models, 40 users (one
// event in ten without a user) and 150 sessions (one in ten without).
func genEvents(prefix string, n, days int, seed uint64) []event {
	r := rand.New(rand.NewPCG(seed, 0x70c3))
	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	out := make([]event, n)
	for i := range out {
		d := r.IntN(days)
		e := event{
			ID:        fmt.Sprintf("%s-%d", prefix, i),
			Timestamp: base.Add(-time.Duration(d)*24*time.Hour - time.Duration(r.IntN(1800))*time.Second),
			Model:     fmt.Sprintf("model-%d", r.IntN(7)),
			Prompt:    int64(1 + r.IntN(5000)),
			Complete:  int64(r.IntN(2000)),
			Cost:      tokenledger.Nanos(r.IntN(50_000_000)),
		}
		e.CacheRead = int64(r.IntN(int(e.Prompt)/2 + 1))
		if r.IntN(10) != 0 {
			e.User = fmt.Sprintf("user-%d", r.IntN(40))
		}
		if r.IntN(10) != 0 {
			e.Session = fmt.Sprintf("sess-%d", r.IntN(150))
		}
		out[i] = e
	}
	return out
}

// batches cuts events into batches of 1 to max events, deterministically.
func batches(events []event, max int, seed uint64) [][]event {
	r := rand.New(rand.NewPCG(seed, 0xba7c))
	var out [][]event
	for len(events) > 0 {
		n := min(1+r.IntN(max), len(events))
		out = append(out, events[:n])
		events = events[n:]
	}
	return out
}

// ---------------------------------------------------------------------------
// Load: many clients posting batches

// outcome is what a load run saw: the events answered 200 (acknowledged)
// and those that got anything else.
type outcome struct {
	mu       sync.Mutex
	acked    []event
	unacked  []event
	degraded int // batches answered 200 with degraded: true
	// duplicates counts fresh events answered as duplicates: the events
	// are all fresh, so there must be none — not even when the REST store
	// sent a call again whose first reply was lost (its claim token).
	duplicates int
	failures   []string
	maxLatency time.Duration
}

func (o *outcome) ackedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.acked)
}

// load has `clients` goroutines post events (cut into batches of 1 to
// maxBatch) to the URL urlFor returns for each request, until every event
// was sent once. Each batch answered 200 must account for every event (as
// accepted or, see outcome.duplicates, duplicate) with its id; other
// answers, and requests without an answer, leave their events
// unacknowledged. It returns when every client is done.
func load(t testing.TB, events []event, clients, maxBatch int, urlFor func(client, req int) string) *outcome {
	t.Helper()
	o, done := startLoad(t, events, clients, maxBatch, nil, urlFor)
	<-done
	return o
}

// startLoad is load in the background: done closes when every client is
// done. Clients also stop, leaving the rest of their events unsent, when
// stop closes (nil: never).
func startLoad(t testing.TB, events []event, clients, maxBatch int, stop <-chan struct{}, urlFor func(client, req int) string) (*outcome, <-chan struct{}) {
	o := &outcome{}
	var wg sync.WaitGroup
	for c := range clients {
		var mine []event
		for i := c; i < len(events); i += clients {
			mine = append(mine, events[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req, b := range batches(mine, maxBatch, uint64(c)) {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				status, a, err := post(context.Background(), urlFor(c, req), b)
				took := time.Since(start)
				o.mu.Lock()
				o.maxLatency = max(o.maxLatency, took)
				switch {
				case err == nil && status == 200:
					if a.Accepted+a.Duplicates != len(b) || !slices.Equal(a.IDs, ids(b)) {
						t.Errorf("a batch of %d new events was answered %+v", len(b), a)
					}
					o.duplicates += a.Duplicates
					o.acked = append(o.acked, b...)
					if a.Degraded {
						o.degraded++
					}
				default:
					o.unacked = append(o.unacked, b...)
					if len(o.failures) < 5 {
						o.failures = append(o.failures, fmt.Sprintf("%d %q %v", status, a.Error, err))
					}
				}
				o.mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return o, done
}

func ids(events []event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// noDuplicates fails t when a fresh event was answered as a duplicate.
func (o *outcome) noDuplicates(t testing.TB) {
	t.Helper()
	if o.duplicates > 0 {
		t.Errorf("%d fresh events were answered as duplicates", o.duplicates)
	}
}

// waitAcked polls until o has acknowledged at least n events.
func waitAcked(t testing.TB, o *outcome, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for o.ackedCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d events acknowledged after 60s, waiting for %d", o.ackedCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Expectations: the aggregates a set of events must produce
