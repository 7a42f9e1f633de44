package redis_test

// Benchmarks for BENCHMARKS.md ("## Redis store"). Each starts its own
// redis-server. Run them with:
//
//	go test -run '^$' -bench . -benchtime 1x ./store/redis/

import (
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// benchEvents is how many events each measured phase logs.
const benchEvents = 60_000

// BenchmarkLogVsCeiling logs single events through the store's Go API from
// 64 goroutines, and runs redis-benchmark with the very same EVALSHA (same
// script, same kind of arguments, a random event id) at 64 connections.
// Each of b.N rounds runs, side by side on one server: the store as
// shipped (concurrent calls combined into shared pipelines, the add calls
// of one day merged into one script call), the same without merging, the
// store with every call on its own connection, and the ceiling. It reports
// the medians, and the median of the per-round ratios to the ceiling, and
// for each phase the Redis CPU time per event (INFO cpu before and after):
// the ceiling sends one event per call, so it pays every per-call cost of
// the script once per event.
func BenchmarkLogVsCeiling(b *testing.B) {
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		b.Skip("redis-benchmark is not installed")
	}
	srv := redistest.Server(b)
	info := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer info.Close()
	stores := []struct {
		name string
		s    *redis.Store
	}{{name: "store"}, {name: "unmerged"}, {name: "direct"}}
	stores[0].s = open(b, redis.RedisOptions{URL: srv.URL()})
	redis.SetMerge(false)
	stores[1].s = open(b, redis.RedisOptions{URL: srv.URL()})
	redis.SetMerge(true)
	redis.SetCombine(false)
	stores[2].s = open(b, redis.RedisOptions{URL: srv.URL(), PoolSize: 64})
	redis.SetCombine(true)
	now := time.Now().UTC()
	day := tokenledger.DateOf(now)
	exp := strconv.FormatInt(day.Time().AddDate(0, 0, tokenledger.DefaultRetentionDays+1).Unix(), 10)
	perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / benchEvents }
	rate := map[string][]float64{}  // events/s per phase
	ratio := map[string][]float64{} // % of the ceiling's rate, per round
	goCPU := map[string][]float64{}
	redisUS := map[string][]float64{}
	var rounds []string
	for round := range b.N {
		r := map[string]float64{}
		for _, st := range stores {
			r0 := redisCPU(b, info)
			x, cpu := logPhase(b, st.s, now, st.name, round)
			r[st.name] = x
			rate[st.name] = append(rate[st.name], x)
			goCPU[st.name] = append(goCPU[st.name], cpu)
			redisUS[st.name] = append(redisUS[st.name], perEvent(redisCPU(b, info)-r0))
		}
		r0 := redisCPU(b, info)
		x, cpu := ceilingPhase(b, srv, day, exp)
		redisUS["ceiling"] = append(redisUS["ceiling"], perEvent(redisCPU(b, info)-r0))
		rate["ceiling"] = append(rate["ceiling"], x)
		goCPU["ceiling"] = append(goCPU["ceiling"], cpu)
		for _, st := range stores {
			ratio[st.name] = append(ratio[st.name], 100*r[st.name]/x)
		}
		rounds = append(rounds, fmt.Sprintf("store %.0f, unmerged %.0f, direct %.0f, ceiling %.0f", r["store"], r["unmerged"], r["direct"], x))
	}
	for _, st := range stores {
		b.ReportMetric(median(rate[st.name]), st.name+"-events/s")
		b.ReportMetric(median(ratio[st.name]), st.name+"-%-of-ceiling")
		b.ReportMetric(median(goCPU[st.name]), st.name+"-go-cpu-µs/event")
		b.ReportMetric(median(redisUS[st.name]), st.name+"-redis-cpu-µs/event")
	}
	b.ReportMetric(median(rate["ceiling"]), "ceiling-evalsha/s")
	b.ReportMetric(median(goCPU["ceiling"]), "ceiling-client-cpu-µs/call")
	b.ReportMetric(median(redisUS["ceiling"]), "ceiling-redis-cpu-µs/event")
	b.Logf("events/s per round: %s", strings.Join(rounds, "; "))
}

// redisCPU returns the CPU time the Redis server has used so far
// (used_cpu_sys + used_cpu_user from INFO cpu).
func redisCPU(b testing.TB, c *goredis.Client) time.Duration {
	b.Helper()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, f); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("INFO cpu: %q: %v", line, err)
				}
				total += x
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// logPhase logs benchEvents events from 64 goroutines, one Add each, and
// returns events per second and the CPU time this process spent per event.
func logPhase(b testing.TB, s *redis.Store, now time.Time, phase string, round int) (rate, cpuMicros float64) {
	b.Helper()
	cpu0 := processCPU(b)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := []tokenledger.Event{{Timestamp: now, Model: "gpt-4o", UserID: "u1", SessionID: "s1",
				PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150, Cost: 1500}}
			for {
				i := next.Add(1)
				if i > benchEvents {
					return
				}
				ev[0].ID = fmt.Sprintf("%s%d-%09d", phase, round, i)
				if _, err := s.Add(context.Background(), storetest.Batch(ev)); err != nil {
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
	return benchEvents / took.Seconds(), float64((processCPU(b) - cpu0).Microseconds()) / benchEvents
}

// childrenCPU returns the user and system CPU time of this process's
// finished children (redis-benchmark, once it has been waited for).
func childrenCPU(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ceilingPhase runs redis-benchmark with the store's EVALSHA at 64
// connections and returns its requests per second and the CPU time
// redis-benchmark itself spent per call.
func ceilingPhase(b testing.TB, srv *redistest.Instance, day tokenledger.Date, exp string) (rps, clientCPU float64) {
	b.Helper()
	k, err := redis.NewKeys(redistest.Prefix()) // fresh counters each round
	if err != nil {
		b.Fatal(err)
	}
	// With -r 1e12 redis-benchmark repeats one id; 1e8 gives random ids,
	// of which about one call in 5,000 repeats an earlier one.
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port()), "-c", "64", "-n", strconv.Itoa(benchEvents),
		"-r", "100000000", "--csv",
		"EVALSHA", redis.AddScriptSHA(), "7",
		k.Day(day, redis.KindTotals), k.Day(day, redis.KindModels), k.Day(day, redis.KindUsers),
		k.Day(day, redis.KindUserSet), k.Day(day, redis.KindSessions), k.ID(day, "__rand_int__"),
		// Each __rand_int__ is drawn on its own: a fresh claim hash and field
		// per call, as most events of a day land in a hash of their own call.
		k.Day(day, redis.KindIDs+"__rand_int__"),
		exp, "gpt-4o", "u1", "s1", "100", "50", "150", "0", "0", "0", "1500", redis.CodePricedClient, "__rand_int__"}
	cpu0 := childrenCPU(b)
	out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
	clientCPU = float64((childrenCPU(b) - cpu0).Microseconds()) / benchEvents
	if err != nil {
		b.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil || len(recs) < 2 || len(recs[1]) < 2 {
		b.Fatalf("redis-benchmark output: %v\n%s", err, out)
	}
	rps, err = strconv.ParseFloat(recs[1][1], 64)
	if err != nil {
		b.Fatalf("redis-benchmark rps %q: %v", recs[1][1], err)
	}
	// The calls must really have counted new events: NOSCRIPT replies or
	// repeated ids would be cheaper and flatter the ceiling.
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer c.Close()
	if n, err := c.HGet(context.Background(), k.Day(day, redis.KindTotals), "n").Int64(); err != nil || n < benchEvents*99/100 {
		b.Fatalf("redis-benchmark counted %d new events of %d (%v): its calls were not like the store's", n, benchEvents, err)
	}
	return rps, clientCPU
}

// BenchmarkAll91Days reads 91 days × 20 models × 100 users with
// Service.All(ctx, 91) and reports the p50 and p99 latency and the round
// trips per read (counted on the wire).
func BenchmarkAll91Days(b *testing.B) {
	srv := redistest.Server(b)
	tc := newTripCounter()
	s := open(b, redis.RedisOptions{URL: srv.URL(), Dialer: tc.dial, PoolSize: 1})
	now := time.Now().UTC()
	today := tokenledger.DateOf(now)
	ctx := context.Background()
	var batch []tokenledger.Event
	for d := range 91 {
		ts := today.AddDays(-d).Time().Add(time.Hour)
		if d == 0 {
			ts = now
		}
		for m := range 20 {
			for u := range 100 {
				batch = append(batch, tokenledger.Event{ID: fmt.Sprintf("%d-%d-%d", d, m, u), Timestamp: ts,
					Model: fmt.Sprintf("model-%02d", m), UserID: fmt.Sprintf("user-%03d", u), SessionID: fmt.Sprintf("s-%d", u%10),
					PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120, Cost: 1234})
			}
		}
		if _, err := s.Add(ctx, storetest.Batch(batch)); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	svc, err := tokenledger.NewService(tokenledger.Config{Store: s, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	for _, users := range []bool{false, true} {
		name := "All"
		if users {
			name = "Users"
		}
		b.Run(name, func(b *testing.B) {
			read := func() error {
				if users {
					_, err := svc.Users(ctx, 91)
					return err
				}
				r, err := svc.All(ctx, 91)
				if err == nil && r.Stats.DaysTracked != 91 {
					err = fmt.Errorf("All saw %d days, want 91", r.Stats.DaysTracked)
				}
				return err
			}
			if err := read(); err != nil { // warm the connection
				b.Fatal(err)
			}
			tc.reset()
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := read(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(total(tc.count("")))/float64(len(lat)), "round-trips/op")
		})
	}
}

// BenchmarkMemoryPerDay logs one day of events from 1,000 users over 20
// models (2,000 sessions) and reports the Redis memory that day takes:
// used_memory before and after, and MEMORY USAGE of each kind of key (the
// claim hashes' summed, per event). BenchmarkClaimMemory compares the
// claims with the layout before v7.
func BenchmarkMemoryPerDay(b *testing.B) {
	for _, events := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("events=%d", events), func(b *testing.B) {
			for b.Loop() {
				memoryPerDay(b, events)
			}
		})
	}
}

func memoryPerDay(b *testing.B, events int) {
	srv := redistest.Server(b)
	s := open(b, redis.RedisOptions{URL: srv.URL()})
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	used := func() int64 { return usedMemory(b, c) }
	before := used()
	now := time.Now().UTC()
	var batch []tokenledger.Event
	for i := range events {
		batch = append(batch, tokenledger.Event{ID: tokenledger.NewEventID(), Timestamp: now,
			Model: fmt.Sprintf("model-%02d", i%20), UserID: fmt.Sprintf("user-%04d", i%1000), SessionID: fmt.Sprintf("session-%04d", i%2000),
			PromptTokens: 1000, CompletionTokens: 200, TotalTokens: 1200, Cost: 4321})
		if len(batch) == 1000 {
			if _, err := s.Add(ctx, storetest.Batch(batch)); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	after := used()
	day := tokenledger.DateOf(now)
	k, _ := redis.NewKeys(s.Prefix())
	usage := func(key string) int64 {
		n, err := c.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	var agg int64
	for _, kind := range []string{redis.KindTotals, redis.KindModels, redis.KindUsers, redis.KindUserSet, redis.KindSessions} {
		n := usage(k.Day(day, kind))
		agg += n
		b.ReportMetric(float64(n), kind+"-B")
	}
	hashes := scanKeys(b, c, k.Day(day, redis.KindIDs)+"*")
	var claimB int64
	for _, key := range hashes {
		claimB += usage(key)
	}
	b.ReportMetric(float64(countClaims(b, c, s.Prefix(), day)), "claims")
	b.ReportMetric(float64(len(hashes)), "claim-hashes")
	b.ReportMetric(float64(claimB)/float64(events), "claim-B") // MEMORY USAGE of the claim hashes, per event
	b.ReportMetric(float64(agg), "aggregates-B")
	b.ReportMetric(float64(after-before), "used_memory-delta-B")
	b.ReportMetric(float64(after-before)/float64(events), "B/event")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkReadAll is GET action=all's read, Service.All(ctx, 91), over 91
// days × 20 models × 1,000 users (1,000 events a day, each user once),
// with the validated cache and without it (every day read whole, as
// before), alternately on one server: p50 and p99 of a repeated read, and
// of the first read after an event is logged through another instance.
func BenchmarkReadAll(b *testing.B) {
	srv := redistest.Server(b)
	prefix := redistest.Prefix()
	writer := open(b, redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix})
	now := time.Now().UTC()
	today := tokenledger.DateOf(now)
	ctx := context.Background()
	var batch []tokenledger.Event
	for d := range 91 {
		ts := today.AddDays(-d).Time().Add(time.Hour)
		if d == 0 {
			ts = now.Add(-time.Minute)
		}
		for u := range 1000 {
			batch = append(batch, tokenledger.Event{ID: fmt.Sprintf("%d-%d", d, u), Timestamp: ts,
				Model: fmt.Sprintf("model-%02d", u%20), UserID: fmt.Sprintf("user-%04d", u), SessionID: fmt.Sprintf("s-%d", u%50),
				PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120, Cost: 1234})
		}
		if _, err := writer.Add(ctx, storetest.Batch(batch)); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	service := func(cached bool) *tokenledger.Service {
		redis.SetReadCache(cached)
		defer redis.SetReadCache(true)
		svc, err := tokenledger.NewService(tokenledger.Config{Store: open(b, redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix}), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		return svc
	}
	sides := map[string]*tokenledger.Service{"cached": service(true), "uncached": service(false)}
	lat := map[string][]time.Duration{}
	read := func(name string) {
		start := time.Now()
		r, err := sides[name].All(ctx, 91)
		took := time.Since(start)
		if err != nil || r.Stats.DaysTracked != 91 {
			b.Fatalf("%s: %d days, %v", name, r.Stats.DaysTracked, err)
		}
		lat[name] = append(lat[name], took)
	}
	for range b.N {
		for _, name := range []string{"cached", "uncached"} {
			read(name) // warm
		}
		for i := range 100 {
			for _, name := range []string{"cached", "uncached"} {
				read(name)
			}
			if i%2 == 1 { // after a write through the other instance
				if _, err := writer.Add(ctx, storetest.Batch([]tokenledger.Event{{Timestamp: now, Model: "model-00", UserID: "user-0001",
					PromptTokens: 1, TotalTokens: 1, ID: fmt.Sprintf("w-%d-%d", time.Now().UnixNano(), i)}})); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				read("cached")
				lat["after-write"] = append(lat["after-write"], time.Since(start))
				lat["cached"] = lat["cached"][:len(lat["cached"])-1]
			}
		}
	}
	for _, name := range []string{"cached", "uncached", "after-write"} {
		l := lat[name]
		slices.Sort(l)
		b.ReportMetric(float64(l[len(l)/2].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(l[len(l)*99/100].Microseconds()), name+"-p99-µs")
	}
}
