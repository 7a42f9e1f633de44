package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/tokenledger/tokenledger/store/filestore"
	"github.com/tokenledger/tokenledger/store/redis"
)

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
