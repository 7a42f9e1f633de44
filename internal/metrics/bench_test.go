package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/metrics"
	"github.com/tokenledger/tokenledger/store/filestore"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

const (
	cpuEvents  = 20_000 // single-event requests a side sends in a round
	cpuRounds  = 6
	cpuClients = 16
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// handlerFor is serve's HTTP API over a new store of kind, with the
// metrics wired as internal/app wires them (the Service's observer, the
// store measured, every request timed) or without any.
func handlerFor(b *testing.B, kind string, withMetrics bool) http.Handler {
	var st tokenledger.Store
	switch kind {
	case "memory":
		st = memstore.New(nil, 0)
	case "file":
		fs, err := filestore.Open(filepath.Join(b.TempDir(), "u.json"), filestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { fs.Close() })
		st = fs
	}
	cfg := tokenledger.Config{Store: st, Logger: quiet}
	deps := httpapi.Deps{Logger: quiet}
	if withMetrics {
		m := metrics.New(metrics.Options{})
		cfg.Store, cfg.Observer, deps.Metrics = m.Store(st), m, m
	}
	svc, err := tokenledger.NewService(cfg)
	if err != nil {
		b.Fatal(err)
	}
	deps.Service = svc
	return httpapi.NewServer(deps)
}

// cpuPerEvent sends cpuEvents single events to h from cpuClients
// goroutines, in process (no sockets), and returns the CPU the process
// spent per event.
func cpuPerEvent(b *testing.B, h http.Handler, round int, side string) time.Duration {
	var wg sync.WaitGroup
	next := make(chan int, cpuEvents)
	for i := range cpuEvents {
		next <- i
	}
	close(next)
	start := cpuTime(b)
	for range cpuClients {
		wg.Go(func() {
			for i := range next {
				body := fmt.Sprintf(`{"id":"%s-%d-%d","model":"m%d","userId":"u%d","promptTokens":10,"completionTokens":2}`, side, round, i, i%20, i%100)
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/api/tokens", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Errorf("POST: %d %s", rec.Code, rec.Body)
					return
				}
			}
		})
	}
	wg.Wait()
	return (cpuTime(b) - start) / cpuEvents
}

// nopStore takes every event and does nothing: what the metrics' store
// wrapper costs by itself.
type nopStore struct{ tokenledger.Store }

func (nopStore) Add(_ context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	return tokenledger.AddResult{New: make([]bool, batch.Len())}, nil
}

// metricsOnly is the CPU per event of exactly what the metrics do for a
// logged event — the request's histogram, the Service's observer and the
// store wrapper — with nothing else, from one goroutine.
func metricsOnly(n int) time.Duration {
	m := metrics.New(metrics.Options{})
	st := m.Store(nopStore{})
	ev := []tokenledger.Event{{Model: "m", UserID: "u", PromptTokens: 10, CompletionTokens: 2, TotalTokens: 12}}
	isNew := []bool{true}
	start := time.Now()
	for i := range n {
		ev[0].Model = models[i%len(models)]
		st.Add(context.Background(), storetest.Batch(ev))
		m.Logged(ev, isNew)
		m.ObserveHTTP("POST /api/tokens", "POST", 200, time.Millisecond)
	}
	return time.Since(start) / time.Duration(n)
}

var models = func() []string {
	var ms []string
	for i := range 20 {
		ms = append(ms, fmt.Sprintf("m%d", i))
	}
	return ms
}()

// BenchmarkMetricsCPU logs single events through serve's handler with the
// metrics and without them, alternately in rounds, on the memory store
// (the least work per event, so the largest share for the metrics) and
// the file store: the process's CPU per logged event each way (medians)
// and the difference's share, which on two shared cores is within the
// noise; and the precise figure: the CPU of the metrics' own calls per
// event, measured alone, as a share of the handler's CPU per event
// without metrics.
func BenchmarkMetricsCPU(b *testing.B) {
	for _, kind := range []string{"memory", "file"} {
		b.Run("store="+kind, func(b *testing.B) {
			for range b.N {
				with, without := handlerFor(b, kind, true), handlerFor(b, kind, false)
				var on, off, share, alone []float64
				for round := range cpuRounds {
					var a, c float64 // each side first in every other round, so order does not favour one
					if round%2 == 0 {
						a = float64(cpuPerEvent(b, without, round, "off"))
						c = float64(cpuPerEvent(b, with, round, "on"))
					} else {
						c = float64(cpuPerEvent(b, with, round, "on"))
						a = float64(cpuPerEvent(b, without, round, "off"))
					}
					off, on, share = append(off, a), append(on, c), append(share, 100*(c-a)/a)
					alone = append(alone, float64(metricsOnly(cpuEvents)))
				}
				b.ReportMetric(median(off), "cpu-ns/event-without")
				b.ReportMetric(median(on), "cpu-ns/event-with")
				b.ReportMetric(median(share), "on-vs-off-%-cpu")
				b.ReportMetric(median(alone), "metrics-ns/event")
				b.ReportMetric(100*median(alone)/median(off), "metrics-%-cpu")
			}
		})
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
