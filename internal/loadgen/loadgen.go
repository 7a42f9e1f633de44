// Package loadgen drives a tokenledger with concurrent clients — over its
// HTTP API or through a Service on the configured store — measures
// throughput and latency, and then verifies that the service's totals grew
// by exactly what it acknowledged.
//
// Every name a run uses is its own: models "bench-<run>-m<i>", users
// "bench-<run>-u<i>", sessions "bench-<run>-s<i>" and event ids
// "bench-<run>-<client>-<seq>". So on a live, shared service the per-model
// and per-user totals of those names (GET /api/tokens?action=models and
// action=users) grow by this run's events and nothing else, and can be
// compared exactly with what the run sent.
//
// Each event's content is a pure function of its id and the run's seed, so
// a re-sent event (Config.Resend, and the re-send pass for events whose
// outcome is unknown) is the very event sent before, and all events carry
// the run's start time as their timestamp (a re-send lands on the same
// day).
//
// Verification. Every event ends in one of three states: stored (some
// request carrying it got HTTP 200: the service counts it exactly once),
// rejected (every request carrying it got a 4xx: nothing stored), or
// unknown (no clean answer: a timeout, a broken connection or a 5xx, after
// which it may or may not have been counted). After the load, events in
// the unknown state are sent again — a correct service counts them once
// whatever happened before — until they are acknowledged or the attempts
// run out. Then the expected totals are the sums over stored events, and
// the service's totals (after minus before) must equal them exactly, model
// by model and user by user. Events still unknown at the end make the
// check a range (between the stored events and the stored plus the
// unknown ones) and the result inconclusive rather than passed.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"sync/atomic"
	"time"

	"github.com/tokenledger/tokenledger"
)

// Config is one load run.
type Config struct {
	// Clients is how many clients send at once, each one request at a
	// time (a closed loop).
	Clients int
	// Duration bounds the run when Events is 0.
	Duration time.Duration
	// Events, when above 0, is how many events to send (re-sent ones
	// included); the run ends when they have all been answered.
	Events int64
	// Batch is how many events one request carries (1: a single event
	// object; more: an array).
	Batch int
	// Models, Users and Sessions are how many distinct names the events
	// spread over.
	Models, Users, Sessions int
	// Resend is the share of events that repeat an id this client sent
	// before (0 to 1).
	Resend float64
	// RunID names the run; a random one when empty. Ids are built from
	// it, so it must be new for every run: a repeated one re-sends the
	// earlier run's ids, which a correct service does not count again.
	RunID string
	// Verify reads the totals before and after and compares them.
	Verify bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Progress, when not nil, is called about every ProgressEvery during
	// the load with the counts so far.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// ResendAttempts is how often the re-send pass tries an event of
	// unknown outcome (default 8); SettleTimeout bounds the re-send pass
	// and the reads of the totals together (default 60 s).
	ResendAttempts int
	SettleTimeout  time.Duration
	// Stop, when not nil, ends the load early when closed (Ctrl-C); the
	// re-send pass and the verification still run.
	Stop <-chan struct{}
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Elapsed  time.Duration
	Requests int64
	Events   int64
	Errors   int64
}

// Result is what a run measured and found.
type Result struct {
	RunID   string        `json:"runId"`
	Target  string        `json:"target"`
	Clients int           `json:"clients"`
	Batch   int           `json:"batch"`
	Elapsed time.Duration `json:"-"`
	Seconds float64       `json:"seconds"`

	Requests       int64   `json:"requests"`
	Events         int64   `json:"events"`
	ResentEvents   int64   `json:"resentEvents"`
	RequestsPerSec float64 `json:"requestsPerSecond"`
	EventsPerSec   float64 `json:"eventsPerSecond"`
	// Accepted and Duplicates sum the service's answers.
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`

	Latency Latency `json:"latencyMs"`

	// Errors counts failed requests by kind ("HTTP 503", "timeout", ...).
	Errors     map[string]int64  `json:"errors"`
	ErrorCount int64             `json:"errorCount"`
	ErrorLines map[string]string `json:"errorExamples,omitempty"`

	// Unique ids by final state.
	Stored   int64 `json:"storedEvents"`
	Rejected int64 `json:"rejectedEvents"`
	// UnknownAfterLoad counts events whose outcome was unknown when the
	// load ended; Unknown those still unknown after the re-send pass.
	UnknownAfterLoad int64 `json:"unknownAfterLoad"`
	Unknown          int64 `json:"unknown"`

	// Expected sums the stored events.
	Expected tokenledger.Totals `json:"expected"`
	Verify   *Verification      `json:"verify,omitempty"`
}

// Latency are request latencies in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// run is the shared state of one run.
type run struct {
	cfg    Config
	target Target
	names  *names
	seed   uint64
	ts     time.Time
	tsText string

	left     atomic.Int64 // events still to send (-n)
	reqs     atomic.Int64
	events   atomic.Int64
	errCount atomic.Int64
	stop     atomic.Bool
	fatal    atomic.Pointer[Answer] // the first fatal answer
}

// Run drives target as cfg says and returns what it measured. The error
// is nil when the run completed; a failed verification is reported in
// Result.Verify, not as an error. ctx ending stops everything, the
// verification included.
func Run(ctx context.Context, target Target, cfg Config) (*Result, error) {
	if cfg.Clients < 1 || cfg.Batch < 1 || cfg.Batch > tokenledger.MaxBatch || cfg.Models < 1 || cfg.Users < 1 || cfg.Sessions < 1 {
		return nil, errors.New("loadgen: clients, batch, models, users and sessions must be positive (batch at most 1000)")
	}
	if cfg.Resend < 0 || cfg.Resend >= 1 {
		return nil, errors.New("loadgen: resend must be from 0 to below 1")
	}
	if cfg.Events <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("loadgen: give a duration or a number of events")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RunID == "" {
		cfg.RunID = NewRunID()
	}
	if cfg.ResendAttempts <= 0 {
		cfg.ResendAttempts = 8
	}
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = 60 * time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	r := &run{cfg: cfg, target: target, names: newNames(cfg.RunID, cfg.Models, cfg.Users, cfg.Sessions)}
	var sb [8]byte
	_, _ = rand.Read(sb[:])
	for _, b := range sb {
		r.seed = r.seed<<8 | uint64(b)
	}
	r.ts = cfg.Now().UTC().Truncate(time.Millisecond)
	r.tsText = r.ts.Format("2006-01-02T15:04:05.000Z07:00")
	startDay := tokenledger.DateOf(r.ts)

	var before Totals
	if cfg.Verify {
		var err error
		beforeCtx, cancel := context.WithTimeout(ctx, cfg.SettleTimeout)
		before, err = r.readTotals(beforeCtx, startDay, false)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reading the totals before the run: %w", err)
		}
	}

	clients := make([]*client, cfg.Clients)
	for i := range clients {
		clients[i] = &client{w: i, rng: mrand.New(mrand.NewPCG(r.seed, uint64(i))),
			models: make([]tokenledger.Totals, cfg.Models), users: make([]tokenledger.Totals, cfg.Users),
			errs: map[string]int64{}, lines: map[string]string{}}
	}
	r.left.Store(cfg.Events)
	start := time.Now()
	elapsed := r.load(ctx, clients, start)

	res := &Result{RunID: cfg.RunID, Target: target.Describe(), Clients: cfg.Clients, Batch: cfg.Batch,
		Elapsed: elapsed, Seconds: elapsed.Seconds(), Errors: map[string]int64{}, ErrorLines: map[string]string{}}
	var hist histogram
	for _, c := range clients {
		hist.merge(&c.hist)
		res.Requests += c.reqs
		res.Events += c.events
		res.ResentEvents += c.resent
		res.Accepted += c.acc
		res.Duplicates += c.dup
		for k, v := range c.errs {
			res.Errors[k] += v
			res.ErrorCount += v
			if _, ok := res.ErrorLines[k]; !ok {
				res.ErrorLines[k] = c.lines[k]
			}
		}
		for _, s := range c.states {
			if s == stUnknown {
				res.UnknownAfterLoad++
			}
		}
	}
	if elapsed > 0 {
		res.RequestsPerSec = float64(res.Requests) / elapsed.Seconds()
		res.EventsPerSec = float64(res.Events) / elapsed.Seconds()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.Latency = Latency{Mean: ms(hist.mean()), P50: ms(hist.quantile(0.50)), P95: ms(hist.quantile(0.95)),
		P99: ms(hist.quantile(0.99)), Max: ms(hist.max)}

	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if a := r.fatal.Load(); a != nil {
		return res, fmt.Errorf("%w: %s: %s", ErrRefused, a.Kind, a.Detail)
	}
	settleCtx, cancel := context.WithTimeout(ctx, cfg.SettleTimeout)
	defer cancel()
	if res.UnknownAfterLoad > 0 {
		r.resendUnknown(settleCtx, clients)
	}
	unknownModels := make([]tokenledger.Totals, cfg.Models)
	unknownUsers := make([]tokenledger.Totals, cfg.Users)
	expModels := make([]tokenledger.Totals, cfg.Models)
	expUsers := make([]tokenledger.Totals, cfg.Users)
	for _, c := range clients {
		for i := range c.models {
			expModels[i].Add(c.models[i])
		}
		for i := range c.users {
			expUsers[i].Add(c.users[i])
		}
		for seq, s := range c.states {
			switch s {
			case stStored:
				res.Stored++
			case stRejected:
				res.Rejected++
			case stUnknown:
				res.Unknown++
				sp := specOf(r.seed, key{c.w, int64(seq)}, cfg.Models, cfg.Users, cfg.Sessions)
				unknownModels[sp.model].Add(sp.totals())
				unknownUsers[sp.user].Add(sp.totals())
			}
		}
	}
	for _, t := range expModels {
		res.Expected.Add(t)
	}
	if !cfg.Verify {
		return res, nil
	}
	after, err := r.readTotals(settleCtx, startDay, true)
	if err != nil {
		return res, fmt.Errorf("reading the totals after the run: %w", err)
	}
	res.Verify = r.compare(res, before, after, expModels, expUsers, unknownModels, unknownUsers)
	return res, nil
}

// ErrRefused is returned by Run when the service refused the events in a
// way that retrying cannot fix (HTTP 401 or 403).
var ErrRefused = errors.New("the service refused the events")

// NewRunID returns 8 random hex digits.
func NewRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readTotals reads the totals of the days since the run began, retrying
// until ctx ends while the service answers 5xx (such as 503 while its
// spool still delivers) and, when noAnswer is set, while it does not
// answer at all. Before the run a service that does not answer is a
// mistake (a wrong URL, nothing listening) reported at once; after it,
// the service may be restarting.
func (r *run) readTotals(ctx context.Context, startDay tokenledger.Date, noAnswer bool) (Totals, error) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		days := tokenledger.DaysBetween(startDay, tokenledger.DateOf(r.cfg.Now().UTC())) + 2
		t, err := r.target.Totals(ctx, days)
		var re *ReadError
		retry := errors.Is(err, tokenledger.ErrUnavailable) ||
			errors.As(err, &re) && (re.Status >= 500 || re.Status == 0 && noAnswer)
		if err == nil || !retry {
			return t, err
		}
		select {
		case <-ctx.Done():
			return t, fmt.Errorf("%w (and %w)", err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
