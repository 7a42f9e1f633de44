package main

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/filestore"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// A usage file written directly holds exactly the events that logging them
// through a store would: the file store opens it and reports the same days
// as the reference store given the same events.
func TestWriteUsageFile(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	// A small layout, so that the events go round the 91 days more
	// than twice and end inside a day's block.
	l := layout{models: 3, users: 4, days: tokenledger.DefaultRetentionDays + 1}
	n := 2*l.days*l.block() + 5*l.block() + 7
	path := filepath.Join(t.TempDir(), "token_usage.json")
	if err := writeUsageFile(path, l, n, now); err != nil {
		t.Fatal(err)
	}
	fs, err := filestore.Open(path, filestore.Options{Now: clock, Logger: quiet})
	if err != nil {
		t.Fatalf("the file store refuses the written file: %v", err)
	}
	defer fs.Close()
	mem := memstore.New(clock, tokenledger.DefaultRetentionDays)
	evs := make([]tokenledger.Event, n)
	for k := range evs {
		evs[k] = l.event(k, now)
	}
	if _, err := mem.Add(context.Background(), storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}

	q := tokenledger.DayQuery{From: tokenledger.DateOf(now).AddDays(-tokenledger.DefaultRetentionDays), To: tokenledger.DateOf(now), Users: true}
	got, err := fs.Days(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want, err := mem.Days(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("days differ: file store %d days, reference %d", len(got), len(want))
	}
	var events int64
	for _, d := range got {
		events += d.RequestCount
	}
	if events != int64(n) {
		t.Fatalf("%d events read back, want %d", events, n)
	}
}
