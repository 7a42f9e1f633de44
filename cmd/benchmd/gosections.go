package main

import (
	"sort"
	"strings"
	"time"
)

// goSections writes the stores' sections from their go test benchmarks.
func (r *report) goSections(w func(string, ...any)) {
	table := func(g *goBenchRun) {
		if g.err != nil {
			w("**This benchmark failed in this run:** `%s`\n\n", oneLine(g.err.Error()))
		}
		names := make([]string, 0, len(g.metrics))
		for n := range g.metrics {
			names = append(names, n)
		}
		sort.Strings(names)
		w("| benchmark | metric | value |\n|---|---|---|\n")
		for _, n := range names {
			units := make([]string, 0, len(g.metrics[n]))
			for u := range g.metrics[n] {
				units = append(units, u)
			}
			sort.Strings(units)
			for _, u := range units {
				w("| %s | %s | %s |\n", n, u, num(g.metrics[n][u]))
			}
		}
		w("\n<details><summary>raw output (%s)</summary>\n\n```\n%s\n```\n</details>\n\n", g.took.Round(time.Second), g.raw)
	}
	cmd := func(g *goBenchRun) { w("```\n%s\n```\n\n", g.cmd()) }

	w("## Redis store (Go API)\n\n")
	w("`store/redis/resp_bench_test.go`; each benchmark starts its own `redis-server` on a loopback port.\n\n")
	w("### Logging throughput vs. the `redis-benchmark` ceiling\n\n")
	g := r.bench("redis-ceiling")
	cmd(g)
	w("Each round runs three phases back to back on one server, 60,000 events each: the store as shipped (`Store.Add` with one event, from 64 goroutines; concurrent calls are combined into shared pipelines), ")
	w("the same store with every call on its own connection (the combiner off, pool of 64), and `redis-benchmark -c 64 -n 60000 -r 100000000 EVALSHA <sha> 7 <the day's 5 keys> <prefix>:{D}:id:__rand_int__ <prefix>:{D}:ids:__rand_int__ <expiry> gpt-4o u1 s1 100 50 150 0 0 0 1500 pc __rand_int__` — ")
	w("the very same script with the same kind of arguments, each call a new event (the benchmark checks that ≥ 99 %% of the ceiling's calls counted a new event). Rates are medians over the rounds; ratios the median of the per-round ratios. ")
	w("On two shared cores redis-benchmark is not a hard ceiling: Redis's script work is the bottleneck, and redis-benchmark's own client takes CPU from the same cores (the CPU columns).\n\n")
	table(g)
	w("### Reading 91 days × 20 models × 100 users\n\n")
	g = r.bench("redis-read")
	cmd(g)
	w("182,000 events (one per day × model × user, 10 sessions a day), then `Service.All(ctx, 91)` and `Service.Users(ctx, 91)`; round trips are counted on the wire.\n\n")
	table(g)
	w("### `action=all` with the validated read cache\n\n")
	g = r.bench("redis-readall")
	cmd(g)
	w("91,000 events (91 days × 1,000 users, each user once a day, over 20 models), then `Service.All(ctx, 91)` — `GET action=all`'s read — through two more instances, one with the cache of read days and one that reads every day whole (the code before it), alternately, 100 times each after one warm read; every other round an event is logged through the writer and the cached instance reads at once (`after-write`: it reads today's day whole again). ")
	w("A cached read is one round trip of 93 small commands (two reset markers and each day's request count, docs/redis.md \"Reading\").\n\n")
	table(g)
	w("### Memory per active day\n\n")
	g = r.bench("redis-memory")
	cmd(g)
	w("`BenchmarkMemoryPerDay`: one day of events from 1,000 users over 20 models and 2,000 sessions (UUIDv7 ids), on a fresh server; `used_memory` from `INFO memory` before and after, `MEMORY USAGE <key> SAMPLES 0` per key (`claim-B`: the day's 4,096 claim hashes summed, per event). ")
	w("`BenchmarkClaimMemory` is issue 18's target 4, the id claims at 10^7 events retained (91 days of 110,000): one day of 110,000 UUIDv7 events of that mix, written alternately, the same events to both, on two fresh servers: with the script before v7 (`v6`: one claim key per id, `SET NX EXAT`; its source kept in `store/redis/testdata/add-v6.lua`) and with today's (`v7`: the id as a field of one of the day's 4,096 claim hashes, listpack-encoded; docs/redis.md \"Claims\"). ")
	w("Days share no claim keys, so one day's bytes per event are the window's; the v6 figure understates 10^7 a little, since the keyspace's own table then holds 10^7 keys where v7's holds 91 × 4,096 hashes. ")
	w("`*-B/event` is the `used_memory` delta per event, `*-claim-B/event` the same less the five aggregate keys (which both write alike): the claims' bytes. `*-µs/event@256` and `@1` are the script's Redis CPU per event (`INFO commandstats`, evalsha `usec`) on a third server that runs both scripts under two prefixes, in alternating slices of 16 calls (the usec read between slices, so that one server process sees the machine's noise alike on both sides): 110,000 more events a side in calls of 256 (the combiner's largest merge), then 20,000 in calls of one (pipelined); `v7/v6-cpu@*` their ratios. v7 runs about two more commands per event than v6's one `SET` (the claim's `HEXISTS` and its hash's `EXPIREAT`), which is what it costs.\n\n")
	table(g)

	w("## Redis WAIT\n\n")
	g = r.bench("redis-wait")
	cmd(g)
	w("`store/redis/resp_wait_bench_test.go`: what `TOKENLEDGER_REDIS_WAIT_REPLICAS=1` costs (each write of events followed by `WAIT 1 1000` on its connection, docs/redis.md \"Failover and WAIT\"), on a master with one replica, both `redis-server`s on loopback on the same two cores. ")
	w("Per round, for each store (waiting `off`, then `on`; the order alternates), 1,000 single-event `Store.Add` calls one after another (p50 and p99 latency, µs), then 60,000 single-event Adds from 64 goroutines (events per second); 3 rounds, medians, and the median of the per-round ratios `on/off`. ")
	w("On loopback the replica acknowledges within a scheduler tick, so the cost is one more reply per pipeline and the master's wait for the replica's ack; across machines add one network round trip from master to replica per write.\n\n")
	table(g)

	w("## KV REST store\n\n")
	g = r.bench("kvrest")
	cmd(g)
	w("Kind `kv-rest` (`store/redis/kvrest`, the Upstash / Vercel KV REST protocol over Go `net/http`) through `internal/testkit/kvresttest` (a REST front in the benchmark process) to a `redis-server` the benchmark starts, beside kind `redis` (`store/redis/resp`) on the same server in the same run, from 64 goroutines: ")
	w("10,000 single events (`batch=1`: one HTTP request per event) and 100,000 events in 100-event batches (`batch=100`). Rates are medians over the rounds; the ratio the median of the per-round ratios. ")
	w("Here both the client and the REST front stand in on the same two cores as Redis; against the real Upstash the front's CPU is not ours, but each request pays a network round trip instead, which these figures do not include. ")
	w("For single events the two kinds differ: `redis` merges concurrent calls into shared pipelines and shared script calls, while `kv-rest` sends each event as its own HTTP request (one serverless invocation logs one event; there is nothing to merge it with), so the single-event ratio is low by design and the batch ratio is the one to compare.\n\n")
	table(g)

	w("## File store\n\n")
	g = r.bench("file")
	cmd(g)
	w("`store/filestore` on this machine's disk. `BenchmarkAdd` alternates single-event `Store.Add` calls (durable: one journal line and one fsync each) between a store holding 1,000 events and one holding 1,000,000 and reports both means and the ratios (O(1) per event: ratios near 1). ")
	w("`BenchmarkConcurrentWriters` logs 300 events from 1 goroutine, then 6,400 from 64, on the same store, per round: events per second durable — each Add returns only after the fsync of its journal line — and how many events shared one fsync (group commit). ")
	w("`BenchmarkServiceAll` is `Service.All(ctx, 91)` over 91 days × 20 models from the in-memory aggregates.\n\n")
	table(g)
	g = r.bench("file-open")
	cmd(g)
	w("Start-up and shutdown of a version 1 file with 1,000,000 events: `Open` reads every event to rebuild the aggregates and the (day, id) sets; `Close` after one write folds the journal, rewriting the file. Both are linear in the events kept and paid once per start and stop, never per event.\n\n")
	table(g)
	g = r.bench("file-versions")
	cmd(g)
	w("The file format side by side (issue 18, target 1: open 10^7 events in ≤ 5 s with ≤ 500 MiB peak RSS, ≤ 1 s at 10^6; a clean stop writes in proportion to what changed). Each store is written directly (`WriteFile` for version 1, `WriteFile2` for version 2, written as version 3 with a file per day: the same events, 91 days × 20 models × 1,000 users × 5,000 sessions) and opened in a child process, by the kept version 1 reader (`v1`) or as version 2 (`v2`: the aggregates' snapshot, a day file per day, and the packed id indexes, no event parsed; a clean stop rewrites the days that changed): seconds to open, the child's peak RSS (VmHWM), and the seconds and bytes (`wchar`) of the clean stop after one more event. Version 1 at 10^7 is left out to keep this script under 10 minutes (about 50 s to open and 60 s for a clean stop that rewrites 2 GiB, by hand: `go test -run '^$' -bench OpenVersions -benchtime 1x ./store/filestore/ -args -bench-file-10m=both`); the `serve` row of the growth table above is version 2.\n\n")
	table(g)

	w("## Pricing\n\n")
	g = r.bench("pricing")
	cmd(g)
	w("`pricing/bench_test.go`. `BenchmarkPrice` is what the price table adds to each event: the model's lookup and the exact cost, for a model found by its key (`exact`), one found only without its date suffix (`dated`, above 200k prompt tokens: the long-context tier), and an unknown model for which every lookup step misses (`unknown`), with the shipped 218 models and with the table grown to 5,000 (a flat lookup: the same time). ")
	w("`BenchmarkDecodePrepare` is the whole way in for one event — `DecodeEvents` then `Service.Prepare` — without a price table and with one, in the same run: the difference is pricing's share, within the noise of two shared cores.\n\n")
	table(g)

	w("## Dashboard\n\n")
	g = r.bench("dashboard")
	cmd(g)
	w("`internal/web/bench_test.go`, over 90 days × 50 models × 1,000 users (90,000 events) logged through `serve`'s HTTP API. `BenchmarkRangeRequest` is the page's one data request, `GET /api/tokens?action=range&days=90`, read whole over loopback 100 times after 20 uncounted reads: p50 and p99. ")
	w("The file store answers from its in-memory aggregates; most of its time is summing 90 × 1,000 per-user totals. On Redis, `serve` keeps the days it read and checks each day's request count on every request (docs/redis.md \"Reading\"), so a read after the first costs one round trip of small commands. ")
	w("`BenchmarkFirstRender` opens the page in headless Chromium 5 times (file store) and takes the median from the HTML's `responseEnd` to the page's `tokenledger-rendered` mark (every section drawn), from the Performance API; `page-KiB-gzip` is the page, its scripts and styles gzipped.\n\n")
	table(g)
	w("## Proxy\n\n")
	g = r.bench("proxy")
	cmd(g)
	w("`internal/proxy/bench_test.go`: the recording proxy (`/proxy/openai/…`, recording into a memory store) against calling its stand-in upstream directly, alternately in one run, all on loopback on the same two cores. `BenchmarkOverhead`: the p50 of 300 non-streamed Chat Completions calls each way and the difference; the difference of the p50 time to the first byte of 300 streamed calls; requests per second of non-streamed calls from 64 clients for a second, 3 rounds each way, with an upstream that answers at once and one that takes 20 ms. ")
	w("Against an upstream that answers at once the proxy's rate is bound by CPU: a proxied call is three loopback HTTP hops' work (the client's, the proxy's server and client sides, the upstream's) against one, on the same two cores, so it cannot come near 80 %%; with an upstream that takes time, as every model does, the proxy's rate is the upstream's. ")
	w("`BenchmarkStreamMemory` holds 200 slow Anthropic streams open, each read to its first event, directly and then through the proxy, and reports the heap in use of the difference over 200: what the proxy keeps per stream in flight.\n\n")
	table(g)
	w("## OTLP ingest\n\n")
	g = r.bench("otlp")
	cmd(g)
	w("`internal/otlp/bench_test.go`: `serve`'s handler (metrics on) over the file store and over Redis, on loopback from 4 clients. Each round sends 40 OTLP/HTTP protobuf exports of 500 GenAI spans, then 40 `POST /api/tokens` batches of 500 events of the same shape (20 models, 100 users, every id new), 3 rounds; rates are medians, the share the median of the per-round shares, and the store's count is checked after. ")
	w("Decoding protobuf with pdata costs less than the strict JSON decoder, so OTLP can be faster than the batches on the file store; on Redis both wait on the same script calls.\n\n")
	table(g)
	w("## Metrics cost\n\n")
	g = r.bench("metrics")
	cmd(g)
	w("`internal/metrics/bench_test.go`: single events through `serve`'s handler in process (no sockets) from 16 goroutines, 20,000 a side per round, 6 rounds alternating which side goes first, with the metrics wired as `internal/app` wires them and without any; CPU from `getrusage`. ")
	w("On two shared cores the difference between the sides (`on-vs-off-%%-cpu`) moves by several per cent from run to run, more than what it measures, so the figure held to the target is the metrics' own calls for one event — the request's histogram, the observer's counters and the store wrapper's timing — measured alone (`metrics-ns/event`), as a share of the handler's CPU per event without metrics (`metrics-%%-cpu`).\n\n")
	table(g)
}

// pricingFigures returns the slowest BenchmarkPrice case in ns/op and the
// largest ratio of a case at 5,000 models to the same case at 218.
func pricingFigures(g *goBenchRun) (worstNs, worstRatio float64) {
	for name, m := range g.metrics {
		rest, ok := strings.CutPrefix(name, "BenchmarkPrice/models=5000/")
		if ok {
			if base := g.m("BenchmarkPrice/models=218/"+rest, "ns/op"); base > 0 {
				worstRatio = max(worstRatio, m["ns/op"]/base)
			}
		}
		if strings.HasPrefix(name, "BenchmarkPrice/") {
			worstNs = max(worstNs, m["ns/op"])
		}
	}
	return worstNs, worstRatio

}
