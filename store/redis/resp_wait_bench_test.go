package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// BenchmarkWaitReplicas is the cost of WaitReplicas 1 (WAIT after every
// write of events) on a real master with one replica, both on loopback:
// per round, for each store (waiting off, then on; the order alternates
// from round to round), 1,000 single-event Adds one after another (p50
// and p99 of their latency), then benchEvents single-event Adds from 64
// goroutines (events per second). It reports the medians over 3 rounds
// per b.N and the median of the per-round ratios on/off.
func BenchmarkWaitReplicas(b *testing.B) {
	master := redistest.Server(b)
	redistest.Replica(b, master)
	stores := map[string]*redis.Store{
		"off": open(b, redis.RedisOptions{URL: master.URL()}),
		"on":  open(b, redis.RedisOptions{URL: master.URL(), WaitReplicas: 1, WaitTimeout: time.Second}),
	}
	now := time.Now().UTC()
	metric := map[string][]float64{}
	add := func(k string, v float64) { metric[k] = append(metric[k], v) }
	var rounds []string
	for round := range 3 * b.N {
		got := map[string][3]float64{}
		order := []string{"off", "on"}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, name := range order {
			p50, p99 := sequentialLatency(b, stores[name], now, fmt.Sprintf("wl-%s%d-", name, round), 1000)
			rate, _ := logPhase(b, stores[name], now, "wt-"+name, round)
			got[name] = [3]float64{p50, p99, rate}
			add(name+"-p50-µs", p50)
			add(name+"-p99-µs", p99)
			add(name+"-events/s", rate)
		}
		add("on/off-p50", got["on"][0]/got["off"][0])
		add("on/off-p99", got["on"][1]/got["off"][1])
		add("on/off-events/s", got["on"][2]/got["off"][2])
		rounds = append(rounds, fmt.Sprintf("off p50 %.0fµs p99 %.0fµs %.0f ev/s, on p50 %.0fµs p99 %.0fµs %.0f ev/s",
			got["off"][0], got["off"][1], got["off"][2], got["on"][0], got["on"][1], got["on"][2]))
	}
	for k, v := range metric {
		b.ReportMetric(median(v), k)
	}
	b.Logf("per round: %s", strings.Join(rounds, "; "))
}

// sequentialLatency times n single-event Adds one after another and
// returns the p50 and p99 in microseconds.
func sequentialLatency(b *testing.B, s *redis.Store, now time.Time, prefix string, n int) (p50, p99 float64) {
	b.Helper()
	took := make([]float64, n)
	ev := []tokenledger.Event{{Timestamp: now, Model: "gpt-4o", UserID: "u1", SessionID: "s1",
		PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150, Cost: 1500}}
	for i := range took {
		ev[0].ID = fmt.Sprintf("%s%06d", prefix, i)
		start := time.Now()
		if _, err := s.Add(context.Background(), storetest.Batch(ev)); err != nil {
			b.Fatal(err)
		}
		took[i] = float64(time.Since(start).Nanoseconds()) / 1e3
	}
	slices.Sort(took)
	return took[n/2], took[n*99/100]
}
