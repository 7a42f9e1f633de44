// Command benchmd measures tokenledger on this machine and writes
// BENCHMARKS.md. scripts/bench.sh builds the binaries and runs it; see
// that script. Everything it starts listens on loopback and is stopped at
// the end.
//
//	go run ./cmd/benchmd --bin DIR --out BENCHMARKS.md
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokenledger/tokenledger/store/filestore"
	"github.com/tokenledger/tokenledger/store/redis"
)

var (
	started  = time.Now()
	cleanups []func()
)

func cleanup() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

// keep registers p to be stopped at the end.
func keep(p *proc) *proc {
	cleanups = append(cleanups, func() { p.stop(syscall.SIGKILL) })
	return p
}

func main() {
	bin := flag.String("bin", "", "directory holding the built tokenledger and ceiling binaries")
	out := flag.String("out", "BENCHMARKS.md", "file to write")
	rounds := flag.Int("rounds", 5, "alternating rounds of tokenledger and the ceiling")
	dur := flag.Duration("d", 4*time.Second, "duration of each HTTP load run")
	flag.Parse()
	if *bin == "" {
		fail("--bin is required")
	}
	tl, ceilBin := filepath.Join(*bin, "tokenledger"), filepath.Join(*bin, "ceiling")
	tmp, err := os.MkdirTemp("", "tokenledger-bench-")
	must(err)
	cleanups = append(cleanups, func() { _ = os.RemoveAll(tmp) })
	defer cleanup()

	r := &report{machine: describeMachine()}
	note("machine: %s", r.machine)

	// 1. HTTP single events: tokenledger on Redis vs the ceiling, and
	// batches; the server's memory; a CPU profile.
	httpPhase(r, tl, ceilBin, filepath.Join(tmp, "http"), *rounds, *dur)
	// 2. Stored data: reading 91 days and the cost per event as the
	// store grows, on Redis and on the file.
	redisDataPhase(r, tl, filepath.Join(tmp, "redis-data"))
	fileDataPhase(r, tl, filepath.Join(tmp, "file-data"))
	// 3. The stores' own Go benchmarks.
	goBenchPhase(r)

	r.took = time.Since(started)
	r.loadEnd = loadAvg()
	must(os.WriteFile(*out, []byte(r.markdown()), 0o644))
	note("wrote %s in %s", *out, r.took.Round(time.Second))
}

// env returns the environment for tokenledger processes.
func env(extra ...string) []string {
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TOKENLEDGER_MIGRATE=0"}
	return append(base, extra...)
}

// httpPhase measures POST /api/tokens on Redis.
func httpPhase(r *report, tl, ceilBin, dir string, rounds int, dur time.Duration) {
	must(os.MkdirAll(dir, 0o755))
	rs := keep(startRedis(filepath.Join(dir, "redis")))
	serveEnv := env("TOKENLEDGER_STORE=redis", "REDIS_URL=redis://"+rs.addr, "TOKENLEDGER_FILE="+filepath.Join(dir, "token_usage.json"))
	srv := keep(startListening("serve", serveEnv, dir, tl, "serve", "--addr", "127.0.0.1:0", "--pprof", "127.0.0.1:0"))
	ceil := keep(startListening("ceiling", env(), dir, ceilBin, "--addr", "127.0.0.1:0", "--redis", rs.addr))
	r.serveCmd = "TOKENLEDGER_STORE=redis REDIS_URL=redis://127.0.0.1:PORT tokenledger serve --addr 127.0.0.1:0"
	r.ceilCmd = "go run ./cmd/ceiling --addr 127.0.0.1:0 --redis 127.0.0.1:PORT"
	d := dur.String()
	r.redisCommands = map[string]cmdStat{}
	for i := range rounds {
		note("HTTP round %d/%d: tokenledger", i+1, rounds)
		redisCLI(rs.addr, "CONFIG", "RESETSTAT")
		r.single = append(r.single, runBench(tl, env(), map[string]int{"server": srv.pid(), "redis": rs.pid()}, "",
			"--url", srv.url, "-c", "64", "-d", d))
		for name, st := range commandStats(rs.addr) {
			c := r.redisCommands[name]
			c.calls += st.calls
			c.usec += st.usec
			r.redisCommands[name] = c
		}
		note("  %.0f requests/s; ceiling", r.single[i].res.RequestsPerSec)
		r.ceiling = append(r.ceiling, runBench(tl, env(), map[string]int{"server": ceil.pid(), "redis": rs.pid()}, "",
			"--url", ceil.url, "-c", "64", "-d", d, "--verify=false"))
		note("  %.0f requests/s", r.ceiling[i].res.RequestsPerSec)
	}
	r.serveHWM, r.ceilHWM = statusKB(srv.pid(), "VmHWM"), statusKB(ceil.pid(), "VmHWM")

	// The profile: one more run, with a CPU profile of serve taken in the
	// middle of it.
	note("HTTP: CPU profile of serve")
	profDone := make(chan string, 1)
	go func() {
		time.Sleep(time.Second)
		profDone <- profile(srv, dir, tl, int(dur.Seconds())-2)
	}()
	runBench(tl, env(), nil, "", "--url", srv.url, "-c", "64", "-d", d)
	r.profile = <-profDone

	batchPhase(r, tl, srv, rs, d)
	srv.stop(syscall.SIGTERM)
	ceil.stop(syscall.SIGTERM)
	rs.stop(syscall.SIGTERM)
}

// profile takes a CPU profile of serve over secs seconds through --pprof
// and returns `go tool pprof -top` of it.
func profile(srv *proc, dir, tl string, secs int) string {
	log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
	_, after, ok := strings.Cut(string(log), "🔬 Go profiler on ")
	if !ok {
		return "(no profiler address in serve's log)"
	}
	base, _, _ := strings.Cut(after, " ")
	resp, err := http.Get(fmt.Sprintf("%sprofile?seconds=%d", base, max(secs, 2)))
	if err != nil {
		return "(profile: " + err.Error() + ")"
	}
	defer resp.Body.Close()
	path := filepath.Join(dir, "cpu.pprof")
	f, err := os.Create(path)
	must(err)
	_, _ = io.Copy(f, resp.Body)
	f.Close()
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=60", tl, path).CombinedOutput()
	if err != nil {
		return "(go tool pprof: " + err.Error() + ")"
	}
	return string(out)
}

// measureGrowth measures the latency of logging one event at a time (one
// client) against url, the store holding many events, and against control,
// the same kind of store holding next to nothing, alternating 5 rounds of
// n events so that both see the same machine noise.
func measureGrowth(tl, url, control string, stored int, how string, n int) growth {
	g := growth{stored: stored, how: how}
	var p50, p99, c50, ratio []float64
	for range 5 {
		a := runBench(tl, env(), nil, "", "--url", url, "-c", "1", "-n", fmt.Sprint(n))
		c := runBench(tl, env(), nil, "", "--url", control, "-c", "1", "-n", fmt.Sprint(n))
		g.cmd = a.cmd
		p50, p99, c50 = append(p50, a.res.Latency.P50), append(p99, a.res.Latency.P99), append(c50, c.res.Latency.P50)
		if c.res.Latency.P50 > 0 {
			ratio = append(ratio, a.res.Latency.P50/c.res.Latency.P50)
		}
	}
	g.p50, g.p99, g.ctrl50, g.ratio = median(p50), median(p99), median(c50), median(ratio)
	return g
}

// readLatency GETs path from url n times, one at a time, and returns the
// p50 and p99.
func readLatency(url, path string, n int) (p50, p99 time.Duration) {
	var lat []time.Duration
	for range n {
		start := time.Now()
		resp, err := http.Get(url + path)
		must(err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fail("GET %s: %d", path, resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
}

// growth is one point of "cost as the store grows": medians over the
// rounds, in ms, and the median of the per-round ratios to the control.
type growth struct {
	stored                  int
	how, cmd                string
	p50, p99, ctrl50, ratio float64
}

// redisDataPhase: 10^3, 10^5, 1.82M (91 days × 20 models × 1,000 users,
// where GET all is measured) and 10^7 events stored in Redis.
func redisDataPhase(r *report, tl, dir string) {
	must(os.MkdirAll(dir, 0o755))
	rs := keep(startRedis(filepath.Join(dir, "redis")))
	now := time.Now().UTC()
	st, err := redis.OpenRedis(context.Background(), redis.RedisOptions{URL: "redis://" + rs.addr, Logger: quiet})
	must(err)
	defer st.Close()
	srv := keep(startListening("serve-redis", env("TOKENLEDGER_STORE=redis", "REDIS_URL=redis://"+rs.addr,
		"TOKENLEDGER_FILE="+filepath.Join(dir, "token_usage.json")), dir, tl, "serve", "--addr", "127.0.0.1:0"))
	cdir := filepath.Join(dir, "control")
	crs := keep(startRedis(filepath.Join(cdir, "redis")))
	ctrl := keep(startListening("serve-control", env("TOKENLEDGER_STORE=redis", "REDIS_URL=redis://"+crs.addr,
		"TOKENLEDGER_FILE="+filepath.Join(cdir, "token_usage.json")), cdir, tl, "serve", "--addr", "127.0.0.1:0"))
	stored := 0
	for _, stage := range []struct {
		to  int
		how string
	}{{1_000, "logged"}, {100_000, "logged"}, {fullSeed, "logged"}, {10_000_000, "claims"}} {
		start := time.Now()
		if stage.how == "logged" {
			seed(st, stored, stage.to, now)
		} else {
			addClaims(rs.addr, stored, stage.to, now)
		}
		note("Redis: %d events stored (%s in %s)", stage.to, stage.how, time.Since(start).Round(time.Second))
		stored = stage.to
		if stored == fullSeed {
			r.redisAll50, r.redisAll99 = readLatency(srv.url, "/api/tokens?action=all", 30)
			r.redisSeedTook = time.Since(start)
		}
		if stage.how == "claims" {
			r.redisClaimsTook = time.Since(start)
			r.redisMemory = redisUsedMemory(rs.addr)
		}
		r.redisGrowth = append(r.redisGrowth, measureGrowth(tl, srv.url, ctrl.url, stored, stage.how, 300))
	}
	srv.stop(syscall.SIGTERM)
	ctrl.stop(syscall.SIGTERM)
	rs.stop(syscall.SIGKILL)
	crs.stop(syscall.SIGKILL)
}

// fileDataPhase: 10^3, 10^5, 1.82M and 10^7 events in the file store.
func fileDataPhase(r *report, tl, dir string) {
	must(os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "token_usage.json")
	cdir := filepath.Join(dir, "control")
	must(os.MkdirAll(cdir, 0o755))
	ctrl := keep(startListening("serve-control", env("TOKENLEDGER_STORE=file", "TOKENLEDGER_FILE="+filepath.Join(cdir, "token_usage.json")), cdir, tl, "serve", "--addr", "127.0.0.1:0"))
	defer ctrl.stop(syscall.SIGTERM)
	now := time.Now().UTC()
	stored := 0
	for _, to := range []int{1_000, 100_000, fullSeed} {
		start := time.Now()
		// No compaction while seeding (the journal is folded once, by
		// Close): seeding is not what is measured.
		st, err := filestore.Open(path, filestore.Options{Logger: quiet, CompactBytes: 1 << 40})
		must(err)
		seed(st, stored, to, now)
		must(st.Close())
		stored = to
		took := time.Since(start)
		note("file: %d events stored (%s)", to, took.Round(time.Second))
		start = time.Now()
		srv := keep(startListening("serve-file", env("TOKENLEDGER_STORE=file", "TOKENLEDGER_FILE="+path), dir, tl, "serve", "--addr", "127.0.0.1:0"))
		openTook := time.Since(start)
		if to == fullSeed {
			r.fileSeedTook, r.fileOpenTook = took, openTook
			r.fileBytes = storeBytes(path)
			r.fileAll50, r.fileAll99 = readLatency(srv.url, "/api/tokens?action=all", 30)
			r.fileServeHWM = statusKB(srv.pid(), "VmHWM")
		}
		r.fileGrowth = append(r.fileGrowth, measureGrowth(tl, srv.url, ctrl.url, to, "logged", 100))
		if to == fullSeed {
			srv.stop(syscall.SIGKILL) // the temp dir goes; skip the final compaction
		} else {
			srv.stop(syscall.SIGTERM)
		}
	}
	fileTenMillion(r, tl, filepath.Join(dir, "10m"), ctrl.url, now)
}

// storeBytes returns the size of the file store's files at path: the usage
// file, its journals and (versions 2 and 3) its id indexes and day files.
func storeBytes(path string) int64 {
	files, err := filestore.Files(path)
	must(err)
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		must(err)
		n += fi.Size()
	}
	return n
}

// bigEvents is the largest store size measured.
const bigEvents = 10_000_000

// bigFileLatestStart is how far into the run the file's 10^7 step may
// start (it came at about 4 minutes in runs on 2 cores).
const bigFileLatestStart = 5*time.Minute + 30*time.Second

// bigFile is the file store's 10^7 point.
type bigFile struct {
	skipped             string // why it was not measured, when it was not
	writeTook, openTook time.Duration
	bytes, serveHWM     int64
}

// fileTenMillion measures the cost per event with 10^7 events in the file:
// they are written straight into a new usage file (logging them through
// the store would take minutes), which `serve` then opens like any other.
// It runs only when the disk has room for twice the file, and when the
// run so far leaves time for it (about 2 minutes here) and the Go
// benchmarks after it (about 2.5) within bench.sh's 10 minutes.
func fileTenMillion(r *report, tl, dir, control string, now time.Time) {
	if took := time.Since(started); took > bigFileLatestStart {
		r.fileBig.skipped = fmt.Sprintf("the run had taken %s when it came to this step, too long to fit it and the rest in 10 minutes", took.Round(time.Second))
		note("file: 10^7 not measured: %s", r.fileBig.skipped)
		return
	}
	must(os.MkdirAll(dir, 0o755))
	need := uint64(float64(r.fileBytes) / fullSeed * bigEvents * 2)
	var fs syscall.Statfs_t
	must(syscall.Statfs(dir, &fs))
	if free := fs.Bavail * uint64(fs.Bsize); free < need {
		r.fileBig.skipped = fmt.Sprintf("the disk had %.1f GiB free, and the file with a margin needs %.1f GiB", float64(free)/(1<<30), float64(need)/(1<<30))
		note("file: 10^7 not measured: %s", r.fileBig.skipped)
		return
	}
	path := filepath.Join(dir, "token_usage.json")
	start := time.Now()
	must(writeUsageFile(path, seedLayout, bigEvents, now))
	r.fileBig.writeTook = time.Since(start)
	r.fileBig.bytes = storeBytes(path)
	note("file: %d events written straight into the file (%s)", bigEvents, r.fileBig.writeTook.Round(time.Second))
	start = time.Now()
	srv := keep(startListening("serve-file-10m", env("TOKENLEDGER_STORE=file", "TOKENLEDGER_FILE="+path), dir, tl, "serve", "--addr", "127.0.0.1:0"))
	r.fileBig.openTook = time.Since(start)
	r.fileBig.serveHWM = statusKB(srv.pid(), "VmHWM")
	note("file: serve opened %d events in %s", bigEvents, r.fileBig.openTook.Round(time.Second))
	r.fileGrowth = append(r.fileGrowth, measureGrowth(tl, srv.url, control, bigEvents, "written", 100))
	srv.stop(syscall.SIGKILL) // BenchmarkOpenVersions measures the clean stop
	must(os.RemoveAll(dir))   // 2 GiB: free it now
}

// redisCLI runs one redis-cli command against addr and returns its output
// ("" when it fails).
func redisCLI(addr string, args ...string) string {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strings.TrimPrefix(addr, "127.0.0.1:")}, args...)...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// cmdStat is one command's line of INFO commandstats.
type cmdStat struct {
	calls int64
	usec  int64 // Redis's own clock: time in the command, descheduled time included
}

// commandStats returns each command's calls and time since the last
// CONFIG RESETSTAT, from INFO commandstats
// ("cmdstat_hincrby:calls=12,usec=30,…"), by lower-case command name;
// commands a script runs count too (and their time is also the script's).
func commandStats(addr string) map[string]cmdStat {
	out := map[string]cmdStat{}
	for _, line := range strings.Split(redisCLI(addr, "INFO", "commandstats"), "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var st cmdStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "calls":
				st.calls = n
			case "usec":
				st.usec = n
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = st
	}
	return out
}

// redisUsedMemory returns INFO memory's used_memory_human.
func redisUsedMemory(addr string) string {
	for _, line := range strings.Split(redisCLI(addr, "INFO", "memory"), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory_human:"); ok {
			return v
		}
	}
	return "?"
}

// goBenchPhase re-runs the stores' go test benchmarks.
func goBenchPhase(r *report) {
	for _, gb := range []*goBenchRun{
		{key: "redis-ceiling", args: []string{"-bench", "LogVsCeiling", "-benchtime", "3x", "./store/redis/"}},
		{key: "redis-read", args: []string{"-bench", "All91Days", "-benchtime", "50x", "./store/redis/"}},
		{key: "redis-readall", args: []string{"-bench", "ReadAll", "-benchtime", "1x", "./store/redis/"}},
		{key: "redis-memory", args: []string{"-bench", "MemoryPerDay|ClaimMemory", "-benchtime", "1x", "./store/redis/"}},
		{key: "redis-wait", args: []string{"-bench", "WaitReplicas", "-benchtime", "1x", "./store/redis/"}},
		{key: "kvrest", args: []string{"-bench", "Log", "-benchtime", "1x", "./store/redis/kvrest/"}},
		{key: "file", args: []string{"-bench", "Add|ConcurrentWriters|ServiceAll", "-benchtime", "1s", "./store/filestore/"}},
		{key: "file-open", args: []string{"-bench", "OpenClose1M", "-benchtime", "1x", "./store/filestore/"}},
		{key: "file-versions", args: []string{"-bench", "OpenVersions", "-benchtime", "1x", "./store/filestore/", "-args", "-bench-file-10m=v2"}},
		{key: "pricing", args: []string{"-bench", "Price|DecodePrepare", "-benchtime", "1s", "./pricing/"}},
		{key: "dashboard", args: []string{"-bench", "RangeRequest|FirstRender", "-benchtime", "1x", "./internal/web/"}},
		{key: "proxy", args: []string{"-bench", "Overhead|StreamMemory", "-benchtime", "1x", "./internal/proxy/"}},
		{key: "otlp", args: []string{"-bench", "Ingest", "-benchtime", "1x", "./internal/otlp/"}},
		{key: "metrics", args: []string{"-bench", "MetricsCPU", "-benchtime", "1x", "./internal/metrics/"}},
	} {
		note("go test -run '^$' %s", strings.Join(gb.args, " "))
		start := time.Now()
		gb.metrics, gb.raw, gb.err = goBench(context.Background(), 4*time.Minute, gb.args...)
		gb.took = time.Since(start)
		if gb.err != nil {
			note("%v", gb.err)
		}
		r.goBench = append(r.goBench, gb)
	}
}

// goBenchRun is one go test -bench invocation.
type goBenchRun struct {
	key     string
	args    []string
	metrics map[string]map[string]float64
	raw     string
	err     error
	took    time.Duration
}

func (g *goBenchRun) cmd() string {
	return "go test -run '^$' " + strings.Join(g.args, " ")
}

// m returns a metric, or 0.
func (g *goBenchRun) m(bench, unit string) float64 { return g.metrics[bench][unit] }

// describeMachine says what runs the benchmark.
func describeMachine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	goV, _ := exec.Command("go", "env", "GOVERSION").Output()
	redisV, _ := exec.Command("redis-server", "--version").Output()
	rv := strings.Fields(string(redisV))
	rver := "?"
	for _, f := range rv {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			rver = v
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d cores (%s), %s RAM, Linux %s, %s, Redis %s; load average at start %s",
		numCPU(), model, mem, strings.TrimSpace(string(kernel)), strings.TrimSpace(string(goV)), rver, loadAvg())
}

func numCPU() int {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "processor\t:")
	}
	return max(n, 1)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}
