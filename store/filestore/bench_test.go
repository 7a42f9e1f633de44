package filestore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// writeBenchFile writes a usage file holding n events spread over the 91
// days of the window ending at now, 20 models, 1000 users, directly with
// the file writer (building it through Add would take minutes of fsyncs).
func writeBenchFile(tb testing.TB, path string, n int, now time.Time) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := &snapWriter{w: bw}
	if err := w.begin(now, 90, 0); err != nil {
		tb.Fatal(err)
	}
	today := tokenledger.DateOf(now)
	const days = 91
	k := 0
	for d := range days {
		date := today.AddDays(d - days + 1)
		per := n / days
		if d < n%days {
			per++
		}
		evs := make([]tokenledger.Event, per)
		for i := range evs {
			evs[i] = tokenledger.Event{
				ID: fmt.Sprintf("bench-%d", k), Timestamp: date.Time().Add(time.Duration(k%86400) * time.Second),
				Model: fmt.Sprintf("model-%02d", k%20), UserID: fmt.Sprintf("user-%d", k%1000), SessionID: fmt.Sprintf("sess-%d", k%5000),
				PromptTokens: int64(k%2000 + 1), CompletionTokens: int64(k % 700), TotalTokens: int64(k%2000 + 1 + k%700),
				Cost: tokenledger.Nanos(k%100_000 + 1),
			}
			k++
		}
		if err := w.day(date, evs); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.end(); err != nil {
		tb.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkAdd logs one event at a time through Store.Add (durable: one
// journal append and one fsync) into a store holding 1,000 events and one
// holding 1,000,000, alternating between the two so that both see the
// same machine noise (fsync latency varies a lot on a shared disk). It
// reports the mean time of each (ns/add@1k, ns/add@1M) and the ratios of
// the means and of the medians; O(1) per event means ratios near 1. An op
// is one Add to each store.
func BenchmarkAdd(b *testing.B) {
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	var stores [2]*Store
	for i, n := range []int{1_000, 1_000_000} {
		// The file is written directly: building it through Add would
		// take a million fsyncs. Open then loads it as usual.
		path := filepath.Join(b.TempDir(), "token_usage.json")
		writeBenchFile(b, path, n, now)
		s, err := Open(path, Options{Version: 1, Now: clock, Logger: discard})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if got := s.events(); got != n {
			b.Fatalf("the store holds %d events, want %d", got, n)
		}
		stores[i] = s
	}
	ctx := context.Background()
	ev := []tokenledger.Event{{Timestamp: now, Model: "model-00", UserID: "user-1", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}
	var took [2][]time.Duration
	i := 0
	for b.Loop() {
		for k, s := range stores {
			ev[0].ID = fmt.Sprintf("new-%d", i)
			start := time.Now()
			if r, err := s.Add(ctx, storetest.Batch(ev)); err != nil || r.Accepted() != 1 {
				b.Fatalf("Add: accepted %d, err %v", r.Accepted(), err)
			}
			took[k] = append(took[k], time.Since(start))
		}
		i++
	}
	var mean, median [2]float64
	for k := range took {
		var sum time.Duration
		for _, d := range took[k] {
			sum += d
		}
		mean[k] = float64(sum) / float64(len(took[k]))
		sorted := slices.Clone(took[k])
		slices.Sort(sorted)
		median[k] = float64(sorted[len(sorted)/2])
	}
	b.ReportMetric(mean[0], "ns/add@1k")
	b.ReportMetric(mean[1], "ns/add@1M")
	b.ReportMetric(mean[1]/mean[0], "mean-ratio")
	b.ReportMetric(median[1]/median[0], "median-ratio")
}

// BenchmarkConcurrentWriters compares logging from 1 goroutine and from 64
// at once. Each op is one round of two phases back to back on the same
// store — 300 events from 1 writer, then 6,400 from 64 writers — so that
// both phases see the same machine noise; it reports the median events/s
// of each phase over the rounds, the median of the per-round ratios, and
// how many events shared an fsync in the 64-writer phases (group commit).
func BenchmarkConcurrentWriters(b *testing.B) {
	now := time.Now().UTC()
	s, err := Open(filepath.Join(b.TempDir(), "token_usage.json"), Options{Now: func() time.Time { return now }, Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var id atomic.Int64
	phase := func(writers, events int) float64 {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(events) {
					e := []tokenledger.Event{{ID: fmt.Sprintf("w-%d", id.Add(1)), Timestamp: now, Model: "m", PromptTokens: 1, TotalTokens: 1}}
					if _, err := s.Add(context.Background(), storetest.Batch(e)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return float64(events) / time.Since(start).Seconds()
	}
	var one, many, ratio []float64
	var manyEvents, manySyncs int64
	for b.Loop() {
		r1 := phase(1, 300)
		syncs := s.syncCount()
		r64 := phase(64, 6400)
		manySyncs += s.syncCount() - syncs
		manyEvents += 6400
		one, many, ratio = append(one, r1), append(many, r64), append(ratio, r64/r1)
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	b.ReportMetric(median(one), "events/s@1")
	b.ReportMetric(median(many), "events/s@64")
	b.ReportMetric(median(ratio), "ratio")
	b.ReportMetric(float64(manyEvents)/float64(max(manySyncs, 1)), "events/fsync@64")
}

// BenchmarkServiceAll reads the whole window — 91 days × 20 models — and
// computes today, history and stats through the Service.
func BenchmarkServiceAll(b *testing.B) {
	now := time.Now().UTC()
	path := filepath.Join(b.TempDir(), "token_usage.json")
	writeBenchFile(b, path, 91*20*10, now)
	clock := func() time.Time { return now }
	s, err := Open(path, Options{Version: 1, Now: clock, Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	svc, err := tokenledger.NewService(tokenledger.Config{Store: s, Now: clock, Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		r, err := svc.All(ctx, 91)
		if err != nil || r.Stats.DaysTracked != 91 || len(r.History[90].Models) != 20 {
			b.Fatalf("All: %d days tracked, %d models today, err %v", r.Stats.DaysTracked, len(r.History[90].Models), err)
		}
	}
}

// BenchmarkOpenClose1M measures what an operator waits for with 1,000,000
// events stored: Open (reading the file into memory) and Close after one
// write (a compaction that rewrites the whole file). It reports the
// seconds of each, the file's size and the heap after Open.
func BenchmarkOpenClose1M(b *testing.B) {
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	path := filepath.Join(b.TempDir(), "token_usage.json")
	writeBenchFile(b, path, 1_000_000, now)
	var open, close time.Duration
	var heap uint64
	i := 0
	for b.Loop() {
		start := time.Now()
		s, err := Open(path, Options{Version: 1, Now: clock, Logger: discard})
		if err != nil {
			b.Fatal(err)
		}
		open += time.Since(start)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapAlloc
		e := []tokenledger.Event{{ID: fmt.Sprintf("oc-%d", i), Timestamp: now, Model: "m", TotalTokens: 1}}
		i++
		if _, err := s.Add(context.Background(), storetest.Batch(e)); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		close += time.Since(start)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(open.Seconds()/float64(i), "s/open")
	b.ReportMetric(close.Seconds()/float64(i), "s/close")
	b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
}
