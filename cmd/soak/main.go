// Command soak runs tokenledger under a mixed load while it injects
// faults, then checks that every acknowledged event is counted exactly
// once. scripts/soak.sh DURATION builds and runs it; its smoke test runs
// the same code for a few seconds.
//
// It starts a redis-server (loopback, append-only file fsync'd always),
// two `tokenledger serve` instances on it, each with its own spool, and a
// stand-in OpenAI upstream for their recording proxies. Clients send single
// events, batches, acknowledged requests again (to either instance), reads,
// proxied chat completions and OTLP span exports, at a capped rate. At
// seeded random intervals (-seed replays the schedule) it SIGKILLs and
// restarts Redis, SIGSTOPs and SIGCONTs it, or SIGKILLs and restarts an
// instance. At the end it settles the events whose requests got no clear
// answer by sending them again, waits until both spools are empty and
// compares each day's per-user and per-model totals with what was
// acknowledged: lost and doubled must both be 0 (exit 1 otherwise).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/upstreamtest"
)

// Config is one soak run.
type Config struct {
	Duration time.Duration // how long the load and the faults last
	Seed     uint64        // the fault schedule's and the load's seed
	Bin      string        // the tokenledger binary
	Dir      string        // where the processes keep their files
	Rate     int           // requests per second, all clients together
	Clients  int
	// FaultGap bounds the wait before each fault: uniform in [Min, Max].
	FaultGapMin, FaultGapMax time.Duration
	Out                      io.Writer // the progress and the report
}

// Report is what a run found.
type Report struct {
	Duration         time.Duration
	Acked, Resent    int64 // distinct events acknowledged; events sent again after their 200
	Unsettled        int64 // events never acknowledged, not even when sent again at the end
	Proxied, Unsure  int   // proxied calls answered; those whose recording a kill may have cut
	Faults           map[string]int
	Reads            map[int]int
	Lost, Doubled    int64
	Mismatches       []string // buckets whose counts or tokens differ
	ContractBreaches []string // answers that should never happen
}

// Failed reports whether the run found a loss, a double or a breach.
func (r *Report) Failed() bool {
	return r.Lost != 0 || r.Doubled != 0 || len(r.Mismatches) > 0 || len(r.ContractBreaches) > 0 || r.Unsettled > 0
}

// runner holds a run's processes and clients.
type runner struct {
	cfg    Config
	run    string
	urls   []string
	redis  *proc
	serves []*proc
	client *http.Client
	tokens chan struct{}
	ledger *ledger
	faults map[string]int
}

func main() {
	var cfg Config
	flag.DurationVar(&cfg.Duration, "d", 30*time.Minute, "how long the load and the faults last")
	seed := flag.Uint64("seed", 0, "seed of the fault schedule and the load (0: a random one, printed)")
	flag.StringVar(&cfg.Bin, "bin", "", "the tokenledger binary (required)")
	flag.StringVar(&cfg.Dir, "dir", "", "work directory (default: a new temporary one, removed on success)")
	flag.IntVar(&cfg.Rate, "rate", 40, "requests per second, all clients together")
	flag.IntVar(&cfg.Clients, "clients", 8, "concurrent clients")
	flag.DurationVar(&cfg.FaultGapMin, "fault-min", 5*time.Second, "shortest wait before a fault")
	flag.DurationVar(&cfg.FaultGapMax, "fault-max", 20*time.Second, "longest wait before a fault")
	flag.Parse()
	if cfg.Bin == "" || flag.NArg() > 0 || cfg.Duration <= 0 || cfg.Rate <= 0 || cfg.Clients <= 0 || cfg.FaultGapMin <= 0 || cfg.FaultGapMax < cfg.FaultGapMin {
		fmt.Fprintln(os.Stderr, "usage: soak -bin PATH [-d 30m] [-seed N] [-rate 40] [-clients 8] [-fault-min 5s] [-fault-max 20s] [-dir DIR]; -bin is required, the durations and numbers must be positive and -fault-max at least -fault-min")
		os.Exit(2)
	}
	cfg.Seed = *seed
	if cfg.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			cfg.Seed = cfg.Seed<<8 | uint64(x)
		}
	}
	keep := cfg.Dir != ""
	if !keep {
		d, err := os.MkdirTemp("", "tokenledger-soak-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cfg.Dir = d
	}
	cfg.Out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v (files in %s)\n", err, cfg.Dir)
		os.Exit(1)
	}
	if rep.Failed() {
		fmt.Fprintf(os.Stderr, "soak: FAILED (seed %d; files in %s)\n", cfg.Seed, cfg.Dir)
		os.Exit(1)
	}
	if !keep {
		_ = os.RemoveAll(cfg.Dir)
	}
}

// Run runs one soak and writes its report to cfg.Out. The error is for a
// run that could not be carried out (a process that would not start); what
// the run found is in the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	out := cfg.Out
	var id [4]byte
	_, _ = rand.Read(id[:])
	r := &runner{cfg: cfg, run: hex.EncodeToString(id[:]), ledger: newLedger(), faults: map[string]int{}, tokens: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * cfg.Clients}}}
	fmt.Fprintf(out, "soak: seed %d, run %s, %s, %d clients at %d requests/s, a fault every %s to %s, files in %s\n",
		cfg.Seed, r.run, cfg.Duration, cfg.Clients, cfg.Rate, cfg.FaultGapMin, cfg.FaultGapMax, cfg.Dir)
	if err := r.startAll(ctx); err != nil {
		r.stopAll()
		return nil, err
	}
	defer r.stopAll()

	start := time.Now()
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Go(func() { r.pace(loadCtx) })
	for k := range cfg.Clients {
		w := &worker{r: r, k: k, rng: mrand.New(mrand.NewPCG(cfg.Seed, uint64(k)+1))}
		wg.Go(func() { w.run(loadCtx) })
	}
	faultErr := make(chan error, 1)
	go func() { faultErr <- r.inject(loadCtx, mrand.New(mrand.NewPCG(cfg.Seed, 0))) }()
	if err := <-faultErr; err != nil {
		stopLoad()
		wg.Wait()
		return nil, err
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}
	fmt.Fprintf(out, "soak: load and faults stopped after %s; settling and verifying\n", elapsed.Round(time.Second))

	// Everything is up again (inject restarts what it stopped). Send
	// again what got no clear answer, until it is acknowledged.
	settleCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r.settle(settleCtx)
	if err := r.drained(settleCtx); err != nil {
		return nil, err
	}
	rep := &Report{Duration: elapsed, Faults: r.faults}
	if err := r.verify(ctx, rep); err != nil {
		return nil, err
	}
	rep.write(out, cfg)
	return rep, nil
}

// startAll starts the stand-in upstream, Redis and both instances.
func (r *runner) startAll(ctx context.Context) error {
	up := upstreamtest.Start()
	go func() { <-ctx.Done(); up.Close() }()
	logf, err := os.Create(filepath.Join(r.cfg.Dir, "redis.log"))
	if err != nil {
		return err
	}
	rport, err := freePort()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(r.cfg.Dir, "redis"), 0o755); err != nil {
		return err
	}
	r.redis = newRedis(filepath.Join(r.cfg.Dir, "redis"), rport, logf)
	if err := r.redis.start(ctx); err != nil {
		return err
	}
	for i := range 2 {
		dir := filepath.Join(r.cfg.Dir, fmt.Sprintf("instance%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		lf, err := os.Create(dir + ".log")
		if err != nil {
			return err
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		s := newServe(r.cfg.Bin, fmt.Sprintf("instance %d", i), dir, port, fmt.Sprintf("redis://127.0.0.1:%d", rport), up.URL, lf)
		r.serves = append(r.serves, s)
		r.urls = append(r.urls, fmt.Sprintf("http://127.0.0.1:%d", port))
		if err := s.start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stopAll ends every child (a SIGSTOPped Redis is continued first).
func (r *runner) stopAll() {
	for _, s := range r.serves {
		s.kill()
	}
	if r.redis != nil {
		_ = r.redis.signal(syscall.SIGCONT)
		r.redis.kill()
	}
}

// pace hands out cfg.Rate request tokens a second.
func (r *runner) pace(ctx context.Context) {
	t := time.NewTicker(time.Second / time.Duration(r.cfg.Rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			select {
			case r.tokens <- struct{}{}:
			default:
			}
		}
	}
}

// inject runs the fault schedule until ctx ends; each fault is undone (the
// process restarted or continued) before the next, and before it returns.
func (r *runner) inject(ctx context.Context, rng *mrand.Rand) error {
	for {
		gap := r.cfg.FaultGapMin + time.Duration(rng.Int64N(int64(r.cfg.FaultGapMax-r.cfg.FaultGapMin)+1))
		kind, down := rng.IntN(3), time.Duration(200+rng.IntN(2800))*time.Millisecond
		inst := rng.IntN(2)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(gap):
		}
		bg := context.WithoutCancel(ctx)
		switch kind {
		case 0:
			r.faults["redis SIGKILL+restart"]++
			r.redis.kill()
			time.Sleep(down)
			if err := r.redis.start(bg); err != nil {
				return err
			}
		case 1:
			r.faults["redis SIGSTOP/SIGCONT"]++
			if err := r.redis.signal(syscall.SIGSTOP); err != nil {
				return err
			}
			time.Sleep(down + 2*time.Second) // past the 1 s database timeout
			if err := r.redis.signal(syscall.SIGCONT); err != nil {
				return err
			}
		case 2:
			r.faults["instance SIGKILL+restart"]++
			r.ledger.mu.Lock()
			r.ledger.kills[inst] = append(r.ledger.kills[inst], time.Now())
			r.ledger.mu.Unlock()
			r.serves[inst].kill()
			time.Sleep(down)
			if err := r.serves[inst].start(bg); err != nil {
				return err
			}
		}
	}
}

// write prints the report.
func (rep *Report) write(out io.Writer, cfg Config) {
	var faults []string
	total := 0
	for k, n := range rep.Faults {
		faults = append(faults, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(faults)
	fmt.Fprintf(out, "soak: seed %d\n", cfg.Seed)
	fmt.Fprintf(out, "duration:          %s\n", rep.Duration.Round(time.Second))
	fmt.Fprintf(out, "events acknowledged: %d (POST and OTLP, each id once)\n", rep.Acked)
	fmt.Fprintf(out, "events re-sent:    %d\n", rep.Resent)
	fmt.Fprintf(out, "proxied calls:     %d answered, %d of them possibly cut by a kill of their instance (checked as a range)\n", rep.Proxied, rep.Unsure)
	fmt.Fprintf(out, "reads:             %v (by status; 0 = no answer)\n", rep.Reads)
	fmt.Fprintf(out, "faults injected:   %d (%s)\n", total, strings.Join(faults, ", "))
	fmt.Fprintf(out, "never acknowledged: %d\n", rep.Unsettled)
	fmt.Fprintf(out, "lost:              %d\n", rep.Lost)
	fmt.Fprintf(out, "doubled:           %d\n", rep.Doubled)
	for _, m := range rep.Mismatches {
		fmt.Fprintf(out, "MISMATCH: %s\n", m)
	}
	for _, e := range rep.ContractBreaches {
		fmt.Fprintf(out, "BREACH: %s\n", e)
	}
}
