package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenledger/tokenledger/internal/loadgen"
	"github.com/tokenledger/tokenledger/store/redis"
)

// report is everything measured, and how to write it down.
type report struct {
	machine, loadEnd string
	took             time.Duration

	serveCmd, ceilCmd string
	single, ceiling   []benchRun
	batches           []benchRun
	serveHWM, ceilHWM int64
	profile           string
	// redisCommands counts the commands Redis ran during the tokenledger
	// rounds (INFO commandstats), by name.
	redisCommands map[string]cmdStat
	// batchRedis is, for each of batches, the commands Redis ran during it
	// and the day's events at its end.
	batchRedis []batchRedis

	redisAll50, redisAll99         time.Duration
	redisSeedTook, redisClaimsTook time.Duration
	redisMemory                    string
	redisGrowth                    []growth

	fileAll50, fileAll99       time.Duration
	fileSeedTook, fileOpenTook time.Duration
	fileBytes, fileServeHWM    int64
	fileGrowth                 []growth
	fileBig                    bigFile

	goBench []*goBenchRun
}

// commandsPerEvent says how many Redis commands one event cost over the
// tokenledger rounds, from INFO commandstats: the script call, and the
// commands the script ran, with Redis's own clock for both.
func commandsPerEvent(r *report) string {
	var events int64
	for _, b := range r.single {
		events += b.res.Events
	}
	script := r.redisCommands["evalsha"]
	if e := r.redisCommands["eval"]; e.calls > 0 {
		script.calls += e.calls
		script.usec += e.usec
	}
	if events == 0 || script.calls == 0 {
		return ""
	}
	type cmd struct {
		name string
		cmdStat
	}
	var inScript []cmd
	var total cmdStat
	for name, st := range r.redisCommands {
		switch name {
		case "evalsha", "eval", "config|resetstat", "info", "ping", "hello", "script|load", "client|setinfo", "command|docs":
			continue
		}
		inScript = append(inScript, cmd{name, st})
		total.calls += st.calls
		total.usec += st.usec
	}
	slices.SortFunc(inScript, func(a, b cmd) int { return int(b.calls - a.calls) })
	var parts []string
	for _, c := range inScript {
		if per := float64(c.calls) / float64(events); per >= 0.05 {
			parts = append(parts, fmt.Sprintf("%.2f `%s`", per, strings.ToUpper(c.name)))
		}
	}
	ev := float64(events)
	guards := float64(r.redisCommands["hmget"].calls+r.redisCommands["type"].calls) / ev
	return fmt.Sprintf("Where Redis's share goes, counted in this run (`INFO commandstats` over the tokenledger rounds, reset before each; the few reads of `bench`'s verification included): %s events took %s script calls, %.1f events a call, and the scripts ran %.1f commands per event — %s — where the ceiling runs one `INCR` per request. By Redis's own clock (which also counts time the process was descheduled, so read it as a split, not a CPU figure) the scripts took %.0f µs per event, %.0f µs of it in the commands themselves; the rest is the Lua around them: each `redis.call` costs about 1 µs beyond the command itself (arguments in, reply back) and the check of each number about 0.3 µs (measured by hand with `redis-benchmark` on scripts that do only that: 100 `HINCRBY`s from Lua took 142 µs a call, 0.46 µs each in the command; 100 `string.match` checks 34 µs), so Redis's share follows the number of commands. "+
		"Of those, %.1f per event (`HMGET`, `TYPE`) are the checks that keep a claim from ever existing without its counters; undoing a failed call's writes inside the script instead would save at most that share, and was not done: that undo path is where a mistake would count an event twice or lose it. A call of two events or more runs the summed script (v11): one `HSETNX` per event, and per call a fixed set (the checks, one `HSET` per hash, the `SADD`s, and `EXPIREAT` only of keys it creates); a call of one event runs v7: `HEXISTS` and `HSET` of its claim, one `HINCRBY` per counter and an `EXPIREAT` of each key it writes.\n\n",
		n0(ev), n0(float64(script.calls)), ev/float64(script.calls), float64(total.calls)/ev, strings.Join(parts, ", "),
		float64(script.usec)/ev, float64(total.usec)/ev, guards)
}

// roundOne compares Redis's CPU per request in the first round with the
// later rounds', for tokenledger (whose first round creates the day's
// keys) and for the ceiling.
func roundOne(r *report) string {
	if len(r.single) < 2 || len(r.ceiling) < 2 {
		return ""
	}
	split := func(runs []benchRun) (first, later float64) {
		var rest []float64
		for _, b := range runs[1:] {
			rest = append(rest, b.perReq(b.cpu["redis"]))
		}
		return runs[0].perReq(runs[0].cpu["redis"]), median(rest)
	}
	tf, tl := split(r.single)
	cf, cl := split(r.ceiling)
	out := fmt.Sprintf("Redis's CPU per request in round 1 against the median of the later rounds: tokenledger %.0f µs against %.0f µs, the ceiling %.0f µs against %.0f µs.", tf, tl, cf, cl)
	if tf > 1.3*tl && cf < 1.3*cl {
		out += " tokenledger's first round creates the day's keys and grows Redis's memory from nothing, which the ceiling's one counter never does; the medians above include that round."
	}
	return out + "\n\n"
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func n0(v float64) string { return loadgen.Thousands(int64(v + 0.5)) }

func ms(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func dms(d time.Duration) string { return ms(float64(d.Microseconds()) / 1000) }

func metGap(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// cpuTotals returns the median µs of CPU per request of server, Redis and
// client over runs.
func cpuTotals(runs []benchRun) (server, redis, client float64) {
	var s, r, c []float64
	for _, b := range runs {
		s = append(s, b.perReq(b.cpu["server"]))
		r = append(r, b.perReq(b.cpu["redis"]))
		c = append(c, b.perReq(b.clientCPU))
	}
	return median(s), median(r), median(c)
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# Benchmarks\n\n")
	w("This file is written by `scripts/bench.sh` (the measuring program is `cmd/benchmd`); run it again to regenerate every figure. ")
	w("This run: %s, %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second))
	w("**Machine:** %s; load average at the end %s. ", r.machine, r.loadEnd)
	w("The load generator, the server and Redis share those cores, and other work may run on the machine at the same time (the load average says how much), ")
	w("so absolute rates move from run to run: compare what was measured side by side in one run, and the CPU time per request, which depends much less on what else runs. ")
	w("Every server is started by the benchmark on a free loopback port (written `PORT` below) and stopped at the end; Redis saves nothing (`--save \"\" --appendonly no`).\n\n")

	// Targets.
	var ratios, sRate, cRate []float64
	for i := range r.single {
		if i < len(r.ceiling) && r.ceiling[i].res.RequestsPerSec > 0 {
			ratios = append(ratios, 100*r.single[i].res.RequestsPerSec/r.ceiling[i].res.RequestsPerSec)
		}
		sRate = append(sRate, r.single[i].res.RequestsPerSec)
	}
	for _, c := range r.ceiling {
		cRate = append(cRate, c.res.RequestsPerSec)
	}
	ss, sr, sc := cpuTotals(r.single)
	cs, cr, cc := cpuTotals(r.ceiling)
	cpuRatio := 0.0
	if ss+sr+sc > 0 {
		cpuRatio = 100 * (cs + cr + cc) / (ss + sr + sc)
	}
	httpRatio := median(ratios)
	redisGB := r.bench("redis-ceiling")
	goRatio := redisGB.m("BenchmarkLogVsCeiling", "store-%-of-ceiling")
	w("## Targets\n\n| target | measured | |\n|---|---|---|\n")
	httpStatus := metGap(httpRatio >= 70 && cpuRatio >= 70)
	if httpRatio < 70 && cpuRatio >= 70 {
		httpStatus = "**missed** by requests/s, met by CPU per request"
	} else if httpRatio >= 70 && cpuRatio < 70 {
		httpStatus = "**missed** by CPU per request, met by requests/s"
	}
	w("| HTTP single events on Redis ≥ 70 %% of a bare `net/http` + one `INCR` server (same load generator, 64 clients) | %.0f %% by requests/s (median of the per-round ratios); %.0f %% by total CPU per request | %s |\n",
		httpRatio, cpuRatio, httpStatus)
	w("| Redis store's Go API ≥ 60 %% of `redis-benchmark` with the same EVALSHA | %.0f %% | %s |\n", goRatio, metGap(goRatio >= 60))
	worst := func(gs []growth) (g growth) {
		for _, x := range gs {
			if x.ratio > g.ratio {
				g = x
			}
		}
		return g
	}
	if len(r.redisGrowth) > 0 {
		g := worst(r.redisGrowth)
		w("| Cost per event flat as the store grows (Redis, up to %s events) | largest ratio to an empty store measured alternately: × %.2f (p50 %s vs %s, at %s events) | %s |\n",
			loadgen.Thousands(int64(r.redisGrowth[len(r.redisGrowth)-1].stored)), g.ratio, ms(g.p50), ms(g.ctrl50), loadgen.Thousands(int64(g.stored)), metGap(g.ratio < 1.5))
	}
	if len(r.fileGrowth) > 0 {
		g := worst(r.fileGrowth)
		unmeasured := ""
		if r.fileBig.skipped != "" {
			unmeasured = "; 10^7 not measured, see below"
		}
		w("| Cost per event flat as the store grows (file, up to %s events%s) | largest ratio to an empty store measured alternately: × %.2f (p50 %s vs %s, at %s events) | %s |\n",
			loadgen.Thousands(int64(r.fileGrowth[len(r.fileGrowth)-1].stored)), unmeasured, g.ratio, ms(g.p50), ms(g.ctrl50), loadgen.Thousands(int64(g.stored)), metGap(g.ratio < 1.5))
	}
	if pr := r.bench("pricing"); len(pr.metrics) > 0 {
		worstNs, worstRatio := pricingFigures(pr)
		w("| Pricing adds ≤ 1 µs per event, flat from 218 to 5,000 models | slowest lookup + cost %.0f ns; largest ratio 5,000 / 218 models × %.2f | %s |\n",
			worstNs, worstRatio, metGap(worstNs <= 1000 && worstRatio < 1.5))
	}
	if d := r.bench("dashboard"); len(d.metrics) > 0 {
		for _, kind := range []string{"file", "redis"} {
			p50 := d.m("BenchmarkRangeRequest/"+kind, "p50-ms")
			w("| Dashboard data request p50 ≤ 20 ms (%s, 90 days × 50 models × 1,000 users) | p50 %.1f ms, p99 %.1f ms | %s |\n",
				kind, p50, d.m("BenchmarkRangeRequest/"+kind, "p99-ms"), metGap(p50 > 0 && p50 <= 20))
		}
		render, size := d.m("BenchmarkFirstRender", "render-p50-ms"), d.m("BenchmarkFirstRender", "page-KiB-gzip")
		if render > 0 {
			w("| Dashboard first render ≤ 500 ms, page ≤ 120 KB gzipped | median %.0f ms; %.1f KiB | %s |\n", render, size, metGap(render <= 500 && size*1024 <= 120_000))
		} else {
			w("| Dashboard first render ≤ 500 ms, page ≤ 120 KB gzipped | not measured: `BenchmarkFirstRender` did not run (no Chromium on this machine) | **not measured** |\n")
		}
	}
	if px := r.bench("proxy"); len(px.metrics) > 0 {
		m := func(unit string) float64 { return px.m("BenchmarkOverhead", unit) }
		w("| Proxy adds ≤ 1 ms p50 (non-streamed), ≤ 2 ms to the first byte (streamed) | + %.2f ms p50; + %.2f ms to the first byte | %s |\n",
			m("added-p50-ms"), m("added-ttfb-ms"), metGap(m("direct-p50-ms") > 0 && m("added-p50-ms") <= 1 && m("added-ttfb-ms") <= 2))
		w("| Proxy throughput ≥ 80 %% of direct at 64 clients | %.0f %% against an upstream that answers at once; %.0f %% against one that takes 20 ms | %s |\n",
			m("proxy-%-of-direct"), m("proxy-%-of-direct-20ms"), metGap(m("proxy-%-of-direct") >= 80))
		kib := px.m("BenchmarkStreamMemory", "KiB/stream")
		w("| Proxy memory ≤ 64 KiB per stream in flight | %.1f KiB | %s |\n", kib, metGap(kib > 0 && kib <= 64))
	}
	if row, ok := ingestRow(r.batches); ok {
		w("%s", row)
	}
	if ra := r.bench("redis-readall"); len(ra.metrics) > 0 {
		m := func(unit string) float64 { return ra.m("BenchmarkReadAll", unit) / 1000 }
		w("| Redis `action=all` read (91 days × 20 models × 1,000 users) p50 ≤ 2 ms, p99 ≤ 5 ms, the first read after a write too | repeated p50 %.2f ms, p99 %.2f ms; after a write p50 %.2f ms, p99 %.2f ms (every day read whole, as before: p50 %.2f ms, p99 %.2f ms) | %s |\n",
			m("cached-p50-µs"), m("cached-p99-µs"), m("after-write-p50-µs"), m("after-write-p99-µs"), m("uncached-p50-µs"), m("uncached-p99-µs"),
			metGap(m("cached-p50-µs") > 0 && m("cached-p50-µs") <= 2 && m("cached-p99-µs") <= 5 && m("after-write-p50-µs") <= 2 && m("after-write-p99-µs") <= 5))
	}
	if fv := r.bench("file-versions"); len(fv.metrics) > 0 {
		m := func(name, unit string) float64 { return fv.m("BenchmarkOpenVersions/"+name, unit) }
		open10, rss10, open1 := m("v2-10M", "s/open"), m("v2-10M", "MiB-peak-RSS"), m("v2-1M", "s/open")
		wrote10, wrote1 := m("v2-10M", "MiB-written/close"), m("v1-1M", "MiB-written/close")
		// "In proportion to what changed": after one event, a clean stop
		// writes about one day's aggregates, not 91 days' (under 2 MiB at
		// this shape, where 91 days' are about 20 MiB).
		startMet := open10 > 0 && open10 <= 5 && rss10 <= 500 && open1 <= 1
		status := metGap(startMet && wrote10 <= 2)
		if startMet && wrote10 > 2 {
			status = "start **met**; clean stop **missed**"
		}
		w("| File store start: 10^7 events (91 days) ≤ 5 s and ≤ 500 MiB peak RSS, 10^6 ≤ 1 s; a clean stop writes in proportion to what changed | the default format (version 3): 10^7 opens in %.2f s with %.0f MiB peak RSS, 10^6 in %.2f s (version 1: %.2f s); a clean stop after one event writes %.1f MiB at 10^7 (version 1 at 10^6: %.0f MiB) | %s |\n",
			open10, rss10, open1, m("v1-1M", "s/open"), wrote10, wrote1, status)
	}
	if rm := r.bench("redis-memory"); len(rm.metrics) > 0 {
		m := func(unit string) float64 { return rm.m("BenchmarkClaimMemory", unit) }
		w("| Redis memory for id claims ≤ 50 bytes per retained event at 10^7 events (`INFO memory`), idempotency exact, expiry automatic | %.1f B/event (before v7: %.1f); the script's Redis CPU per event × %.2f of before in calls of 256, × %.2f in calls of one | %s |\n",
			m("v7-claim-B/event"), m("v6-claim-B/event"), m("v7/v6-cpu@256"), m("v7/v6-cpu@1"), metGap(m("v7-claim-B/event") > 0 && m("v7-claim-B/event") <= 50))
	}
	if o := r.bench("otlp"); len(o.metrics) > 0 {
		for _, c := range []struct {
			kind string
			want float64
		}{{"file", 50_000}, {"redis", 30_000}} {
			n := "BenchmarkIngest/store=" + c.kind
			rate, share := o.m(n, "otlp-spans/s"), o.m(n, "otlp-%-of-batches")
			w("| OTLP ingest ≥ %s spans/s (%s, 500 spans a request) and ≥ 80 %% of `POST /api/tokens` batches of the same events | %s spans/s; %.0f %% of %s events/s | %s |\n",
				loadgen.Thousands(int64(c.want)), c.kind, loadgen.Thousands(int64(rate)), share, loadgen.Thousands(int64(o.m(n, "batch-events/s"))), metGap(rate >= c.want && share >= 80))
		}
	}
	if mt := r.bench("metrics"); len(mt.metrics) > 0 {
		mem, file := mt.m("BenchmarkMetricsCPU/store=memory", "metrics-%-cpu"), mt.m("BenchmarkMetricsCPU/store=file", "metrics-%-cpu")
		w("| `/metrics` adds ≤ 2 %% CPU per logged event | %.0f ns of metrics per event: %.1f %% of the memory store's handler CPU, %.1f %% of the file store's (with vs without in rounds: %+.1f %%, %+.1f %%, within the noise) | %s |\n",
			mt.m("BenchmarkMetricsCPU/store=memory", "metrics-ns/event"), mem, file,
			mt.m("BenchmarkMetricsCPU/store=memory", "on-vs-off-%-cpu"), mt.m("BenchmarkMetricsCPU/store=file", "on-vs-off-%-cpu"), metGap(mem > 0 && mem <= 2 && file <= 2))
	}
	w("\nWhere a target is missed, the section below says why, from the measured CPU split and the profile.\n\n")

	// HTTP single.
	w("## HTTP: single events on Redis vs a bare `net/http` + `INCR` server\n\n")
	w("```\n%s\n%s\n", r.serveCmd, r.ceilCmd)
	if len(r.single) > 0 {
		w("tokenledger bench --url http://127.0.0.1:PORT -c 64 -d %s   # against each, alternating, %d rounds (--verify=false for the ceiling)\n", durOf(r.single[0]), len(r.single))
	}
	w("```\n\n")
	w("`tokenledger serve` runs as shipped: Redis behind the fallback spool, log level info, every event validated, deduplicated by id and added to the day's aggregates by one Lua script. ")
	w("The ceiling (`cmd/ceiling`) decodes the same JSON with `encoding/json` into a plain struct and does one Redis `INCR` per request: no validation, no ids, no aggregates. ")
	w("The same `tokenledger bench` drives both with 64 clients, one request at a time each, unique event ids; against tokenledger it then verifies the totals (against the ceiling `--verify=false`: it keeps none).\n\n")
	w("| round | tokenledger requests/s | p50 | p99 | verified | ceiling requests/s | p50 | p99 | tokenledger / ceiling |\n|---|---|---|---|---|---|---|---|---|\n")
	for i := range r.single {
		s := r.single[i].res
		c := loadgen.Result{}
		if i < len(r.ceiling) {
			c = r.ceiling[i].res
		}
		ver := "–"
		if s.Verify != nil {
			ver = "ok"
			if !s.Verify.OK {
				ver = "**" + s.Verify.Message + "**"
			}
		}
		ratio := 0.0
		if c.RequestsPerSec > 0 {
			ratio = 100 * s.RequestsPerSec / c.RequestsPerSec
		}
		w("| %d | %s | %s | %s | %s | %s | %s | %s | %.0f %% |\n", i+1, n0(s.RequestsPerSec), ms(s.Latency.P50), ms(s.Latency.P99), ver,
			n0(c.RequestsPerSec), ms(c.Latency.P50), ms(c.Latency.P99), ratio)
	}
	w("| median | %s | | | | %s | | | %.0f %% |\n\n", n0(median(sRate)), n0(median(cRate)), httpRatio)
	w("CPU time per request (median over the rounds; server and Redis from `/proc/<pid>/stat`, the client from its rusage):\n\n")
	w("| | server | Redis | load generator | total | 2 cores ÷ total |\n|---|---|---|---|---|---|\n")
	w("| tokenledger | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %s requests/s |\n", ss, sr, sc, ss+sr+sc, n0(2e6/max(ss+sr+sc, 1)))
	w("| ceiling | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %s requests/s |\n\n", cs, cr, cc, cs+cr+cc, n0(2e6/max(cs+cr+cc, 1)))
	w("The last column is what the two cores could do if these three processes had them to themselves: on a saturated machine, throughput follows the total CPU per request. ")
	w("tokenledger's server needs %.0f µs more CPU per request than the bare handler and Redis %.0f µs more: ", ss-cs, sr-cr)
	w("the Lua script claims the ids, checks the keys' types and the counters it writes, and adds to them (the summed script v11 for the calls the combiner merged from two events or more: one `HSETNX` per event and one `HSET` per hash; v7 for an event alone in its call: `HEXISTS` and `HSET` of its claim and one `HINCRBY` per counter, about twenty), then `SADD`s and the expiries (the summed script: only of keys it creates), where the ceiling runs one `INCR`; ")
	w("the server validates the event, assigns nothing (ids come with the events), writes through the spool and the combiner, and answers with the ids. ")
	if httpRatio < 70 || cpuRatio < 70 {
		w("That work is the product (exact, idempotent daily aggregates), so the 70 %% target is missed by what it costs: see the profile below for where the server's share goes, and the Redis store's section for the script's.\n\n")
	} else {
		w("\n\n")
	}
	w("Peak memory (VmHWM from `/proc/<pid>/status`) after the 64-client rounds: `tokenledger serve` %.1f MiB, the ceiling %.1f MiB.\n\n", float64(r.serveHWM)/1024, float64(r.ceilHWM)/1024)

	w("### Profile of `serve` under this load\n\n")
	w("`serve --pprof 127.0.0.1:0` serves Go's profiler on a second loopback port; the benchmark takes a CPU profile of one more 64-client run and prints it with `go tool pprof -top -cum`. The entries that belong to tokenledger's request path:\n\n")
	w("```\n%s```\n\n", filterProfile(r.profile))
	w("Over HTTP fewer calls arrive together than from the Go benchmark's 64 goroutines, so fewer are merged: the server's own CPU spreads them out. What earlier work removed from this path, measured by hand at the time, is in docs/performance-history.md.\n\n")
	w("%s", commandsPerEvent(r))
	w("%s", roundOne(r))
	w("CPU per request moves with the load (a shared machine's caches and clock), so the figure to compare across runs is the ratio measured side by side above.\n\n")

	// Batches.
	w("## HTTP: batches\n\n```\n")
	for _, bt := range r.batches {
		w("%s\n", withPort(bt.cmd))
	}
	w("```\n\n| events per request | clients | events/s | requests/s | p50 per request | p99 | server CPU per event | Redis CPU per event | verified |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, bt := range r.batches {
		s := bt.res
		ver := "ok"
		if s.Verify == nil || !s.Verify.OK {
			ver = "**no**"
			if s.Verify != nil {
				ver = "**" + s.Verify.Message + "**"
			}
		}
		w("| %d | %d | %s | %s | %s | %s | %.1f µs | %.1f µs | %s |\n", s.Batch, s.Clients, n0(s.EventsPerSec), n0(s.RequestsPerSec), ms(s.Latency.P50), ms(s.Latency.P99),
			bt.cpu["server"]*1e6/max(float64(s.Events), 1), bt.cpu["redis"]*1e6/max(float64(s.Events), 1), ver)
	}
	w("\nBatches of 1,000 run %d rounds each, in the order above, on one server and one Redis; the target row takes each one's median round. ", ingestRounds)
	w("A batch is decoded and validated whole, then written as one script call per day; per event, Redis's script work is what is left. ")
	w("Where it goes, by Redis's own clock (`INFO commandstats`, reset before each row; it counts descheduled time too, so read it as a split):\n\n")
	w("| events per request | clients | script per event | of it `HSETNX` (the claim) | `HSETNX` per call | events in the day at the end |\n|---|---|---|---|---|---|\n")
	for i, bt := range r.batches {
		if i >= len(r.batchRedis) {
			break
		}
		br, ev := r.batchRedis[i], max(float64(bt.res.Events), 1)
		script := br.commands["evalsha"].usec + br.commands["eval"].usec
		hs := br.commands["hsetnx"]
		w("| %d | %d | %.1f µs | %.1f µs | %.2f µs | %s |\n", bt.res.Batch, bt.res.Clients, float64(script)/ev, float64(hs.usec)/ev,
			float64(hs.usec)/max(float64(hs.calls), 1), n0(float64(br.dayEvents)))
	}
	w("\nA claim is a field of one of the day's 4,096 claim hashes, kept as listpacks for their memory (docs/redis.md, \"Claims\"); Redis searches a listpack from its start, so an `HSETNX` costs more the more events the day already holds, until the day holds %s events: from there the summed script makes its claim hashes hash tables (docs/redis.md, \"Dense days\"), where a claim costs the same however full the day is. ", n0(redis.DenseDayEvents))
	w("The runs above put every event on today, which holds all the events of this file's earlier rows too: several times the 110,000 a day of the 10^7-event target.\n\n")

	// Reading.
	w("## Reading 91 days: `GET /api/tokens?action=all`\n\n")
	w("Stored: %s events, one per day × model × user over 91 days × 20 models × 1,000 users (plus the few the other measurements add today), logged through the store's Go API in batches of 1,000. ", loadgen.Thousands(fullSeed))
	w("Then 30 requests one at a time; `all` reads the whole retention window (91 days) once and derives today, the history and the stats.\n\n")
	w("| store | p50 | p99 | building the data |\n|---|---|---|---|\n")
	w("| Redis | %s | %s | %s through the script (%s events/s) |\n", dms(r.redisAll50), dms(r.redisAll99), r.redisSeedTook.Round(time.Second), n0(float64(fullSeed)/max(r.redisSeedTook.Seconds(), 1e-9)))
	w("| file | %s | %s | %s to log, %s for `serve` to open the %.0f MiB file; peak RSS of that `serve` %.0f MiB |\n\n", dms(r.fileAll50), dms(r.fileAll99),
		r.fileSeedTook.Round(time.Second), r.fileOpenTook.Round(time.Second), float64(r.fileBytes)/(1<<20), float64(r.fileServeHWM)/1024)
	w("The first request reads every day whole (per day: totals, models, two set sizes, 364 commands); the others find every day's request count unchanged and answer from `serve`'s validated cache of read days after one round trip of 93 small commands (docs/redis.md \"Reading\"; the section \"`action=all` with the validated read cache\" measures it beside the old read and right after a write). The file store answers from the daily aggregates it keeps in memory.\n\n")

	// Growth.
	w("## Cost per event as the store grows\n\n")
	w("Each point: `tokenledger bench --url http://127.0.0.1:PORT -c 1 -n N` against `serve` on the store holding that many events — one client, one event per request, so the latency is the cost of one event end to end (HTTP, validation, the store) — ")
	w("alternated 5 times with the same command against a second `serve` on an empty store of the same kind (the control), so that both see the same machine noise. Figures are medians over the 5 rounds; the ratio is the median of the per-round ratios of the p50s. Flat means a ratio near 1.\n\n")
	w("| store | events stored | how they got there | p50 | p99 | p50 of the empty control | ratio |\n|---|---|---|---|---|---|---|\n")
	for _, g := range r.redisGrowth {
		how := "logged through the store (the script)"
		if g.how == "claims" {
			how = fmt.Sprintf("the rest as claims written directly (%s; Redis used_memory %s)", r.redisClaimsTook.Round(time.Second), r.redisMemory)
		}
		w("| Redis | %s | %s | %s | %s | %s | × %.2f |\n", loadgen.Thousands(int64(g.stored)), how, ms(g.p50), ms(g.p99), ms(g.ctrl50), g.ratio)
	}
	for _, g := range r.fileGrowth {
		how := "logged through the store"
		if g.how == "written" {
			how = fmt.Sprintf("written straight into a new file in the store's format (%.1f GiB, %s); `serve` opened it in %s, peak RSS %.1f GiB",
				float64(r.fileBig.bytes)/(1<<30), r.fileBig.writeTook.Round(time.Second), r.fileBig.openTook.Round(time.Second), float64(r.fileBig.serveHWM)/(1<<20))
		}
		w("| file | %s | %s | %s | %s | %s | × %.2f |\n", loadgen.Thousands(int64(g.stored)), how, ms(g.p50), ms(g.p99), ms(g.ctrl50), g.ratio)
	}
	if len(r.redisGrowth) > 0 && len(r.fileGrowth) > 0 {
		w("\nCommands: `%s` (Redis, 5 × 300 events per point), the same with `-n 100` for the file (every event is an fsync).\n", withPort(r.redisGrowth[0].cmd))
	}
	w("\nRedis at 10^7: logging ten million events through the script would take several minutes of Redis CPU alone, more than the whole budget of this script; ")
	w("what an event's cost could depend on is the size of the keyspace (one claim per event, a field of one of its day's 4,096 claim hashes) and of the day's aggregates, so the events beyond the first %s are added as claims exactly like the script's (`HSET <prefix>:{day}:ids:<bucket> <id> 1` and `EXPIREAT`), spread over the 91 days.\n\n", loadgen.Thousands(fullSeed))
	if r.fileBig.openTook > 0 {
		w("File at 10^7: logging ten million events through the store would take minutes (%s for the first %s here), so they are written straight into a new store by `filestore.WriteFile2`, exactly as a checkpoint writes one (a journal segment, its id index and the snapshot of the aggregates), and `serve` opens it like any other: at start it reads the aggregates and the packed ids, not the events, which is what the open time and the memory above are. ",
			r.fileSeedTook.Round(time.Second), loadgen.Thousands(fullSeed))
		w("After the measurement that `serve` is killed; the cost of a clean stop, and version 1 side by side, are in `BenchmarkOpenVersions` below.\n\n")
	} else if r.fileOpenTook > 0 {
		rate := float64(fullSeed) / r.fileOpenTook.Seconds()
		w("File at 10^7: not measured: %s. The file keeps every event (about %.0f bytes each here), and `serve` reads them all at start to rebuild the aggregates and the per-day id sets: ", r.fileBig.skipped, float64(r.fileBytes)/float64(fullSeed))
		w("in this run %s events took %s to log and %s to open (%s events/s), so 10^7 would be about %.1f GiB and %s to open — per start, not per event. ", loadgen.Thousands(fullSeed),
			r.fileSeedTook.Round(time.Second), r.fileOpenTook.Round(time.Second), n0(rate), float64(r.fileBytes)/float64(fullSeed)*1e7/(1<<30),
			(time.Duration(1e7/rate) * time.Second).Round(time.Second))
		w("Per event the file store appends one journal line and fsyncs; nothing reads or rewrites history, so the flat line above is expected to continue.\n\n")
	}

	// Go benchmarks.
	r.goSections(w)
	return b.String()
}

func durOf(b benchRun) string {
	f := strings.Fields(b.cmd)
	for i, x := range f {
		if x == "-d" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "?"
}

// withPort replaces the URL's port with PORT.
func withPort(cmd string) string {
	f := strings.Fields(cmd)
	for i, x := range f {
		if strings.HasPrefix(x, "http://127.0.0.1:") {
			f[i] = "http://127.0.0.1:PORT"
		}
	}
	return strings.Join(f, " ")
}

// filterProfile keeps the header and the lines of the request path.
func filterProfile(p string) string {
	var out []string
	keepWords := []string{"tokenledger", "net/http.(*conn).serve", "Syscall6", "log/slog", "encoding/json", "runtime.mallocgc", "gcBgMarkWorker", "store/redis", "go-redis", "Duration:", "flat%"}
	for _, line := range strings.Split(p, "\n") {
		for _, k := range keepWords {
			if strings.Contains(line, k) {
				out = append(out, strings.ReplaceAll(line, "github.com/tokenledger/tokenledger", "…"))
				break
			}
		}
		if len(out) >= 32 {
			break
		}
	}
	return strings.Join(out, "\n") + "\n"
}

func (r *report) bench(key string) *goBenchRun {
	for _, g := range r.goBench {
		if g.key == key {
			return g
		}
	}
	return &goBenchRun{}
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return loadgen.Thousands(int64(v + 0.5))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
