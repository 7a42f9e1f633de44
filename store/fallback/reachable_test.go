package fallback

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestReachableAgainOnlyAfterADelivery: while the database stays down,
// delivery attempts fail without saying it is reachable again; the line
// comes once, after the database took the first batch, and before the
// spool is reported drained. One spooled event is worded as one.
func TestReachableAgainOnlyAfterADelivery(t *testing.T) {
	ctx := context.Background()
	db := newFlaky()
	var logs bytes.Buffer // Drain runs in this goroutine only
	s, err := New(db, t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()

	db.down.Store(true)
	if res, err := s.Add(ctx, storetest.Batch(events("one", 1, now))); err != nil || !res.Degraded {
		t.Fatalf("Add while down = %+v, %v; want degraded", res, err)
	}
	for range 3 {
		if _, err := s.Drain(ctx); err == nil {
			t.Fatal("Drain succeeded while the database is down")
		}
	}
	_, err = s.Days(ctx, tokenledger.DayQuery{From: tokenledger.DateOf(now), To: tokenledger.DateOf(now)})
	want := "The database is unreachable and 1 event waits in the local spool; reports would leave it out, so none are given until it is delivered"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("read while down: %v\nwant %q", err, want)
	}
	if out := logs.String(); strings.Contains(out, "reachable again") || !strings.Contains(out, "Database unavailable") {
		t.Fatalf("while the database is down the log says it is reachable, or not that it is down:\n%s", out)
	}

	db.down.Store(false)
	if n, err := s.Drain(ctx); err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v; want 1, nil", n, err)
	}
	out := logs.String()
	down := strings.Index(out, "Database unavailable")
	back := strings.Index(out, "✅ Database reachable again; delivering 1 spooled event\"")
	drained := strings.Index(out, "📦 Spool drained: delivered 1 event to the database (1 new, 0 already there)")
	if down < 0 || back < down || drained < back || strings.Count(out, "reachable again") != 1 {
		t.Errorf("want unavailable, then reachable again once, then drained:\n%s", out)
	}
}
