package fallback

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestResetOnOneInstanceDropsWhatAnotherSpooledBefore: two instances on
// one database, each with its own spool. B spools events during an
// outage; then A resets the database, which A's Reset cannot clear from
// B's spool. When B delivers, the events it spooled before the reset are
// dropped, not brought back into the reset database; what B spools after
// the reset is delivered as usual. (A real redis-server.)
func TestResetOnOneInstanceDropsWhatAnotherSpooledBefore(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Server(t)
	prefix := redistest.Prefix()
	var logsA, logsB bytes.Buffer
	a, _ := overRedis(t, srv, prefix, t.TempDir(), &logsA)
	b, _ := overRedis(t, srv, prefix, t.TempDir(), &logsB)
	now := time.Now().UTC()

	srv.Pause(t)
	if res, err := b.Add(ctx, storetest.Batch(events("before", 4, now))); err != nil || !res.Degraded {
		t.Fatalf("B's Add during the outage: %+v, %v; want spooled", res, err)
	}
	srv.Resume(t)
	time.Sleep(5 * time.Millisecond) // the reset comes later, by the clock too
	if err := a.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Drain(ctx); err != nil || n != 4 {
		t.Fatalf("B's Drain = %d, %v; want its 4 spooled events taken out", n, err)
	}
	if tokens, requests := total(t, a, now); requests != 0 {
		t.Errorf("after A's reset and B's delivery the database holds %d requests (%d tokens), want none", requests, tokens)
	}
	if !strings.Contains(logsB.String(), "Dropped 4 spooled events appended before the database was reset") {
		t.Errorf("B's log does not say it dropped the events:\n%s", logsB.String())
	}
	if st := b.FallbackStatus(); st.Active || st.PendingEvents != 0 {
		t.Errorf("B's status %+v, want fallback ended", st)
	}

	srv.Pause(t)
	if res, err := b.Add(ctx, storetest.Batch(events("after", 2, now))); err != nil || !res.Degraded {
		t.Fatalf("B's Add during the second outage: %+v, %v; want spooled", res, err)
	}
	srv.Resume(t)
	if n, err := b.Drain(ctx); err != nil || n != 2 {
		t.Fatalf("B's Drain = %d, %v; want 2 delivered", n, err)
	}
	if _, requests := total(t, a, now); requests != 2 {
		t.Errorf("the database holds %d requests, want the 2 spooled after the reset", requests)
	}
}

// TestSpoolRecordsOfEarlierVersions: a spool written before records kept
// their time (a bare JSON array of events) is read and delivered, and
// never dropped for a reset.
func TestSpoolRecordsOfEarlierVersions(t *testing.T) {
	r, err := decodeRecord([]byte(`[{"id":"old-1","timestamp":"2026-11-27T10:00:00Z","model":"m","promptTokens":1,"totalTokens":1}]`))
	if err != nil || r.At != 0 || len(r.Events) != 1 || r.Events[0].ID != "old-1" {
		t.Fatalf("decodeRecord of a bare array: %+v, %v", r, err)
	}
	evs, dropped := since([]record{r}, resetCut{reset: time.Now(), at: time.Now()})
	if evs.Len() != 1 || dropped != 0 {
		t.Errorf("since a reset: %d kept, %d dropped; want the record without a time kept", evs.Len(), dropped)
	}
	if n, err := countEvents([]byte(`[{"id":"a"},{"id":"b"}]`)); err != nil || n != 2 {
		t.Errorf("countEvents of a bare array = %d, %v; want 2", n, err)
	}
}
