package kvrest_test

// Benchmarks for BENCHMARKS.md ("## KV REST store"). They start their own
// redis-server and REST front. Run them with:
//
//	go test -run '^$' -bench . -benchtime 3x ./store/redis/kvrest/

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// BenchmarkLog logs events from 64 concurrent callers through kvrest (→ the
// REST front → redis-server) and through kind redis (→ the same
// redis-server), alternating the two in each of b.N rounds, and reports
// both rates (median over the rounds) and the median of the per-round
// ratios. Sub-benchmarks: one
// event per Add, and 100-event batches.
func BenchmarkLog(b *testing.B) {
	srv := redistest.Server(b)
	f := kvresttest.Start(b, srv.Addr(), kvresttest.Options{})
	ctx := context.Background()
	// Kind redis as shipped (default pool, concurrent calls combined).
	rs, err := redis.OpenRedis(ctx, redis.RedisOptions{URL: srv.URL(), KeyPrefix: redistest.Prefix(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	ks := open(b, f, redis.KVRestOptions{})
	for _, tc := range []struct {
		batch, events int
	}{{1, 10_000}, {100, 100_000}} {
		b.Run(fmt.Sprintf("batch=%d", tc.batch), func(b *testing.B) {
			var viaRedis, viaREST []float64
			round := 0
			for b.Loop() {
				viaRedis = append(viaRedis, logPhase(b, rs, fmt.Sprintf("r%d-%d", tc.batch, round), tc.events, tc.batch))
				viaREST = append(viaREST, logPhase(b, ks, fmt.Sprintf("k%d-%d", tc.batch, round), tc.events, tc.batch))
				round++
			}
			ratios := make([]float64, len(viaRedis))
			for i := range ratios {
				ratios[i] = 100 * viaREST[i] / viaRedis[i]
			}
			b.ReportMetric(median(viaRedis), "redis-events/s")
			b.ReportMetric(median(viaREST), "kv-rest-events/s")
			b.ReportMetric(median(ratios), "kv-rest-%-of-redis")
			b.Logf("rounds: redis %v, kv-rest %v", round0(viaRedis), round0(viaREST))
		})
	}
}

// logPhase logs n events from 64 goroutines, batch events per Add, and
// returns events per second.
func logPhase(b *testing.B, s tokenledger.Store, tag string, n, batch int) float64 {
	b.Helper()
	now := time.Now().UTC()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs := make([]tokenledger.Event, batch)
			for {
				first := next.Add(int64(batch)) - int64(batch)
				if first >= int64(n) {
					return
				}
				for j := range evs {
					evs[j] = tokenledger.Event{ID: fmt.Sprintf("%s-%09d", tag, first+int64(j)), Timestamp: now,
						Model: "gpt-4o", UserID: fmt.Sprintf("u%d", j%10), SessionID: "s1",
						PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150, Cost: 1500}
				}
				if _, err := s.Add(context.Background(), storetest.Batch(evs)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n) / took.Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func round0(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
