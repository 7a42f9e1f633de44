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
	"strconv"
	"strings"
	"syscall"
	"time"
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
