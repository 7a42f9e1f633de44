package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/loadgen"
)

const benchUsage = `Usage: tokenledger bench --url URL [flags]
       tokenledger bench --store [flags]

Sends usage events from concurrent clients to a running tokenledger
(--url, over HTTP) or to the configured store directly (--store, through
the same Service the server uses), prints throughput, latency and errors,
and then verifies that the service's totals grew by exactly the events it
acknowledged.

Every name the run uses is its own (models bench-<run>-m0..., users
bench-<run>-u0..., ids bench-<run>-<client>-<n>), so the check is exact on a
live, shared service: it compares the per-model and per-user totals of
those names (GET /api/tokens?action=models and action=users) before and
after. Re-sent ids (--resend) must count once. Events whose outcome is
unknown (a timeout, a broken connection, a 5xx) are sent again after the
load until they are acknowledged, which a correct service counts once
either way; if some stay unknown the check is reported inconclusive.

Bench leaves no data behind in a ledger it did not create. With --url it
refuses a server that already holds usage, since its events would stay
there for good (only a reset of everything removes them): run it against
a server on an empty store, or give --into-live-data to load a live one
anyway. With --store it runs on a scratch store of the configured kind and
deletes it afterwards: a new file in a new directory beside the usage file
(the same disk), or, on Redis and the REST store, the key prefix
<prefix>-bench-<run>, emptied by a reset of that prefix at the end (the
reset's two time markers stay there and expire within 3 days, as does
everything of a bench killed mid-run). --into-live-data runs on the
configured store itself, and the run's events stay in it.

Writes need the API key when the server has one: --api-key, or
TOKENLEDGER_API_KEY (better: a flag shows in the process list).

Exit status: 0 when the totals match, 1 on a mismatch (or an inconclusive
check, or a failure), 2 for a usage mistake. --verify=false skips the
check (for servers that do not keep totals, such as a baseline).
`

// benchFlags are bench's flags.
type benchFlags struct {
	url, apiKey, runID           string
	store, asJSON, verify, quiet bool
	// live is --into-live-data: load a ledger that holds usage, or the
	// configured store itself, leaving the run's events in it.
	live                    bool
	clients, batch          int
	models, users, sessions int
	events                  int64
	duration, timeout       time.Duration
	resend                  float64
}

func runBench(ctx context.Context, args []string, e env) (rerr error) {
	fs := newFlagSet("bench")
	var f benchFlags
	fs.StringVar(&f.url, "url", "", "the tokenledger to drive over HTTP, such as http://127.0.0.1:8080")
	fs.BoolVar(&f.store, "store", false, "drive the configured store directly (the environment, as for serve) instead of a server")
	fs.StringVar(&f.apiKey, "api-key", "", "`key` to send in the Authorization header (default TOKENLEDGER_API_KEY)")
	numFlag(fs, &f.clients, "c", 16, "concurrent `clients`, each sending one request at a time")
	fs.DurationVar(&f.duration, "d", 10*time.Second, "how long to send (unless -n is given)")
	numFlag(fs, &f.events, "n", 0, "send this many `events` (re-sent ones included) instead of for -d")
	numFlag(fs, &f.batch, "batch", 1, "`events` per request, 1 to 1000 (1 sends a single event object)")
	numFlag(fs, &f.models, "models", 5, "how many distinct `models` the events spread over")
	numFlag(fs, &f.users, "users", 100, "how many distinct `users`")
	numFlag(fs, &f.sessions, "sessions", 200, "how many distinct `sessions`")
	fs.Float64Var(&f.resend, "resend", 0, "share of events that repeat an id sent before, from 0 to below 1 (such as 0.05)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on each request; a request that takes longer has an unknown outcome")
	fs.BoolVar(&f.verify, "verify", true, "compare the service's totals before and after (--verify=false to skip)")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&f.live, "into-live-data", false, "load a server that already holds usage (--url), or the configured store itself (--store), leaving the run's events in it for good")
	if err := parseFlags(fs, args, benchUsage, e.stdout); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	if err := f.check(given); err != nil {
		return err
	}
	if f.apiKey == "" {
		f.apiKey = strings.TrimSpace(e.getenv("TOKENLEDGER_API_KEY"))
	}

	runID := loadgen.NewRunID()
	var target loadgen.Target
	if f.url != "" {
		h, err := loadgen.NewHTTP(f.url, f.apiKey, f.clients, f.timeout)
		if err != nil {
			return usagef("bench: --url %s, not %q", err, f.url)
		}
		defer h.Close()
		if !f.live {
			if err := checkEmptyTarget(ctx, e, f.url, f.apiKey); err != nil {
				return err
			}
		}
		target = h
	} else {
		cfg, err := loadConfig(e)
		if err != nil {
			return err
		}
		desc := func(a *app.App) string {
			return fmt.Sprintf("the %s store at %s (%s)", a.Info.Kind, a.Info.Location, cfg.StoreReason)
		}
		var cleanup func(context.Context, *app.App) error
		if !f.live {
			if cfg, cleanup, err = scratchConfig(cfg, runID); err != nil {
				return err
			}
			desc = func(a *app.App) string { return scratchLine(a, cfg) }
		}
		// Warnings and errors only: the per-event log lines would
		// measure the logger.
		log := newLogger(e.stderr, max(cfg.LogLevel, slog.LevelWarn), e.redactor)
		a, err := openApp(ctx, e, cfg, app.Options{Logger: log})
		if err != nil {
			if cleanup != nil {
				err = errors.Join(err, cleanup(ctx, nil))
			}
			return err
		}
		if cleanup != nil {
			// It empties the scratch store, closes it and removes it; a
			// failure of that is the run's.
			defer func() {
				if cerr := cleanup(ctx, a); cerr != nil && rerr == nil {
					rerr = cerr
				}
			}()
		} else {
			defer a.Close()
		}
		target = loadgen.NewService(a.Service, desc(a))
	}

	// Ctrl-C ends the load early; the re-send pass and the check still run.
	// A second Ctrl-C stops the program.
	stop := make(chan struct{})
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stopSignals()
	go func() {
		select {
		case <-sigCtx.Done():
			stopSignals()
			close(stop)
		case <-ctx.Done():
		}
	}()

	cfg := loadgen.Config{
		Clients: f.clients, Duration: f.duration, Events: f.events, Batch: f.batch,
		Models: f.models, Users: f.users, Sessions: f.sessions, Resend: f.resend,
		RunID: runID, Verify: f.verify, Stop: stop,
	}
	fmt.Fprintf(e.stderr, "tokenledger bench: run %s, %s\n", cfg.RunID, f.describe())
	var prog *progress
	if !f.quiet {
		prog = newProgress(e.stderr, e.interactive, f)
		cfg.Progress, cfg.ProgressEvery = prog.show, prog.every
	}
	res, err := loadgen.Run(ctx, target, cfg)
	if prog != nil {
		prog.done()
	}
	if err != nil && res == nil {
		return fmt.Errorf("bench: %w", err)
	}
	if f.asJSON {
		b, jerr := json.MarshalIndent(res, "", "  ")
		if jerr != nil {
			return fmt.Errorf("bench: encode: %w", jerr)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		res.WriteText(e.stdout)
	}
	switch {
	case errors.Is(err, loadgen.ErrRefused) && f.apiKey == "":
		return fmt.Errorf("bench: %w (give --api-key or set TOKENLEDGER_API_KEY)", err)
	case err != nil:
		return fmt.Errorf("bench: %w", err)
	case res.Verify == nil:
		return nil
	case res.Verify.OK:
		return nil
	}
	return fmt.Errorf("bench: %s", res.Verify.Message)
}

// check validates the flags, each mistake in one sentence.
func (f *benchFlags) check(given map[string]bool) error {
	switch {
	case f.url == "" && !f.store:
		return usagef("bench: give --url URL (a running tokenledger) or --store (the configured store); see tokenledger bench --help")
	case f.url != "" && f.store:
		return usagef("bench: give --url or --store, not both")
	case f.clients < 1 || f.clients > 10000:
		return usagef("bench: -c must be a whole number of clients from 1 to 10000, not %d", f.clients)
	case given["n"] && given["d"]:
		return usagef("bench: give -n (a number of events) or -d (a duration), not both")
	case f.events < 0 || (given["n"] && f.events == 0):
		return usagef("bench: -n must be a positive number of events, not %d", f.events)
	case f.duration <= 0:
		return usagef("bench: -d must be a positive duration such as 10s, not %s", f.duration)
	case f.batch < 1 || f.batch > tokenledger.MaxBatch:
		return usagef("bench: --batch must be from 1 to %d events per request, not %d", tokenledger.MaxBatch, f.batch)
	case f.models < 1 || f.models > 10000:
		return usagef("bench: --models must be from 1 to 10000, not %d", f.models)
	case f.users < 1 || f.users > 100000:
		return usagef("bench: --users must be from 1 to 100000, not %d", f.users)
	case f.sessions < 1 || f.sessions > 1000000:
		return usagef("bench: --sessions must be from 1 to 1000000, not %d", f.sessions)
	case math.IsNaN(f.resend) || f.resend < 0 || f.resend >= 1:
		return usagef("bench: --resend must be a share from 0 to below 1, such as 0.05, not %g", f.resend)
	case f.timeout <= 0:
		return usagef("bench: --timeout must be a positive duration such as 10s, not %s", f.timeout)
	}
	return nil
}

// describe says what the run does, for its first line.
func (f *benchFlags) describe() string {
	what := "single events"
	if f.batch > 1 {
		what = fmt.Sprintf("batches of %d", f.batch)
	}
	span := "for " + f.duration.String()
	if f.events > 0 {
		span = loadgen.Thousands(f.events) + " events"
	}
	s := fmt.Sprintf("%d clients, %s, %s, over %d models, %d users, %d sessions", f.clients, what, span, f.models, f.users, f.sessions)
	if f.resend > 0 {
		s += fmt.Sprintf(", %g %% re-sent", 100*f.resend)
	}
	return s
}

// progress shows the run's progress on stderr: one line rewritten in
// place on a terminal, a plain line every 5 seconds otherwise.
type progress struct {
	w           io.Writer
	interactive bool
	every       time.Duration
	total       int64
	last        loadgen.Progress
	shown       bool
}

func newProgress(w io.Writer, interactive bool, f benchFlags) *progress {
	p := &progress{w: w, interactive: interactive, every: 5 * time.Second, total: f.events}
	if interactive {
		p.every = 250 * time.Millisecond
	}
	return p
}

func (p *progress) show(s loadgen.Progress) {
	rate := float64(s.Events-p.last.Events) / (s.Elapsed - p.last.Elapsed).Seconds()
	p.last = s
	line := fmt.Sprintf("%6.1fs  %s events", s.Elapsed.Seconds(), loadgen.Thousands(s.Events))
	if p.total > 0 {
		line += fmt.Sprintf(" of %s", loadgen.Thousands(p.total))
	}
	line += fmt.Sprintf("  %s events/s  %s requests  %s errors", loadgen.Thousands(int64(rate+0.5)), loadgen.Thousands(s.Requests), loadgen.Thousands(s.Errors))
	if p.interactive {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) done() {
	if p.interactive && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// isTerminal reports whether w is a terminal (a character device, and
// TERM is not "dumb").
func isTerminal(w io.Writer, getenv func(string) string) bool {
	f, ok := w.(*os.File)
	if !ok || getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
