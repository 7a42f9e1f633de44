package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
)

// claimDayEvents is one day at the density of 10^7 events retained over
// 91 days. Days do not share claim keys, so one day's bytes per event are
// the whole window's (but see BENCHMARKS.md on the keyspace's own table).
const claimDayEvents = 110_000

// BenchmarkClaimMemory writes one day of claimDayEvents UUIDv7 events
// (1,000 users, 20 models, 2,000 sessions) with the v6 script (a claim key
// per id, testdata/add-v6.lua) and with today's (v7, claim hashes), each on
// a fresh server of its own, the same events to both, alternately, in
// calls of 256 events (the combiner's largest merge): used_memory from
// INFO memory before and after, per event, and the same less the day's
// five aggregates (MEMORY USAGE), which both write alike: the claims'
// bytes. Then the script's Redis CPU per event (evalsha's usec in INFO
// commandstats), on a third server that runs both, under two prefixes,
// in alternate slices of 16 calls (which side goes first alternating
// too), the usec read between slices: one server process keeps the
// machine's noise alike on both sides. Again 110,000 events a side in
// calls of 256, then 20,000 in calls of one (pipelined).
func BenchmarkClaimMemory(b *testing.B) {
	for range b.N {
		sides := []*claimSide{newClaimSide(b, "v6", nil), newClaimSide(b, "v7", nil)}
		before := []int64{usedMemory(b, sides[0].c), usedMemory(b, sides[1].c)}
		counter := 0
		for sent := 0; sent < claimDayEvents; sent += 16 * 256 {
			evs := claimEvents(&counter, min(16*256, claimDayEvents-sent))
			for _, sd := range sides {
				sd.write(b, evs, 256)
			}
		}
		for i, sd := range sides {
			after := usedMemory(b, sd.c)
			agg := sd.aggregates(b)
			b.ReportMetric(float64(after-before[i])/claimDayEvents, sd.layout+"-B/event")
			b.ReportMetric(float64(after-before[i]-agg)/claimDayEvents, sd.layout+"-claim-B/event")
			b.Logf("%s: used_memory %d -> %d (+%d, of which aggregates %d) for %d events", sd.layout, before[i], after, after-before[i], agg, claimDayEvents)
		}
		one := newClaimSide(b, "v6", nil)
		cpu := []*claimSide{one, newClaimSide(b, "v7", one.c)}
		run := func(total, per int) []float64 {
			usec := make([]int64, 2)
			_, last := evalshaStats(b, one.c)
			for slice, sent := 0, 0; sent < total; slice, sent = slice+1, sent+16*per {
				evs := claimEvents(&counter, min(16*per, total-sent))
				for j := range 2 {
					i := (j + slice) % 2
					cpu[i].write(b, evs, per)
					_, u := evalshaStats(b, one.c)
					usec[i] += u - last
					last = u
				}
			}
			return []float64{float64(usec[0]) / float64(total), float64(usec[1]) / float64(total)}
		}
		cpu256 := run(claimDayEvents, 256)
		cpu1 := run(20_000, 1)
		for i, sd := range cpu {
			b.ReportMetric(cpu256[i], sd.layout+"-µs/event@256")
			b.ReportMetric(cpu1[i], sd.layout+"-µs/event@1")
		}
		b.ReportMetric(cpu256[1]/cpu256[0], "v7/v6-cpu@256")
		b.ReportMetric(cpu1[1]/cpu1[0], "v7/v6-cpu@1")
	}
}

// claimSide is one layout's server and script.
type claimSide struct {
	layout string
	c      *goredis.Client
	sha    string
	k      redis.Keys
	day    tokenledger.Date
	exp    int64
}

// newClaimSide returns a side of layout on a fresh server, or, with c, on
// c's server under a prefix of its own.
func newClaimSide(b *testing.B, layout string, c *goredis.Client) *claimSide {
	if c == nil {
		srv := redistest.Server(b)
		c = goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
		b.Cleanup(func() { _ = c.Close() })
	}
	src := redis.AddScript()
	if layout == "v6" {
		src = v6Script(b)
	}
	sha, err := c.ScriptLoad(context.Background(), src).Result()
	if err != nil {
		b.Fatal(err)
	}
	k, _ := redis.NewKeys(redistest.Prefix())
	day := tokenledger.DateOf(time.Now().UTC())
	return &claimSide{layout: layout, c: c, sha: sha, k: k, day: day,
		exp: day.Time().AddDate(0, 0, tokenledger.DefaultRetentionDays+1).Unix()}
}

// claimEvents returns n new events, numbered on from *counter.
func claimEvents(counter *int, n int) []tokenledger.Event {
	evs := make([]tokenledger.Event, n)
	for i := range evs {
		j := *counter
		*counter++
		evs[i] = tokenledger.Event{ID: tokenledger.NewEventID(), Model: fmt.Sprintf("model-%02d", j%20),
			UserID: fmt.Sprintf("user-%04d", j%1000), SessionID: fmt.Sprintf("session-%04d", j%2000),
			PromptTokens: 1000, CompletionTokens: 200, TotalTokens: 1200, Cost: 4321}
	}
	return evs
}

// write sends evs in calls of per events, in one pipeline, and checks that
// every event counted.
func (sd *claimSide) write(b *testing.B, evs []tokenledger.Event, per int) {
	ctx := context.Background()
	pipe := sd.c.Pipeline()
	for i := 0; i < len(evs); i += per {
		part := evs[i:min(i+per, len(evs))]
		var keys []string
		var args []any
		if sd.layout == "v6" {
			keys, args = v6Call(sd.k.Prefix(), sd.day, sd.exp, part, "")
		} else {
			keys, args = v7Call(sd.k, sd.day, sd.exp, part)
		}
		pipe.EvalSha(ctx, sd.sha, keys, args...)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		b.Fatalf("%s: %v", sd.layout, err)
	}
	for _, cmd := range cmds {
		r, _ := cmd.(*goredis.Cmd).Val().([]any)
		for _, v := range r {
			if v != int64(1) {
				b.Fatalf("%s: an event was not new: %v", sd.layout, r)
			}
		}
	}
}

// aggregates returns the MEMORY USAGE of the day's five aggregate keys.
func (sd *claimSide) aggregates(b *testing.B) int64 {
	var agg int64
	for _, kind := range []string{redis.KindTotals, redis.KindModels, redis.KindUsers, redis.KindUserSet, redis.KindSessions} {
		n, err := sd.c.MemoryUsage(context.Background(), sd.k.Day(sd.day, kind), 0).Result()
		if err != nil {
			b.Fatal(err)
		}
		agg += n
	}
	return agg
}

// v7Call returns today's script's keys and values for events of day.
func v7Call(k redis.Keys, day tokenledger.Date, exp int64, evs []tokenledger.Event) ([]string, []any) {
	keys := []string{k.Day(day, redis.KindTotals), k.Day(day, redis.KindModels), k.Day(day, redis.KindUsers),
		k.Day(day, redis.KindUserSet), k.Day(day, redis.KindSessions)}
	args := []any{exp}
	for _, e := range evs {
		old, bucket, field := k.Claim(day, e.ID)
		keys = append(keys, old, bucket)
		args = append(args, e.Model, e.UserID, e.SessionID, e.PromptTokens, e.CompletionTokens, e.TotalTokens,
			e.CacheReadTokens, e.CacheWriteTokens, e.ReasoningTokens, int64(e.Cost), "", field)
	}
	return keys, args
}

// usedMemory returns used_memory from INFO memory.
func usedMemory(b testing.TB, c *goredis.Client) int64 {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}

// evalshaStats returns the calls and usec of EVALSHA from INFO
// commandstats (0, 0 before the first).
func evalshaStats(b testing.TB, c *goredis.Client) (calls, usec int64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		v, ok := strings.CutPrefix(line, "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(val, 10, 64)
			switch name {
			case "calls":
				calls = n
			case "usec":
				usec = n
			}
		}
		return calls, usec
	}
	return 0, 0
}
