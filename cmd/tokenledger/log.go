package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/store/memstore"
)

const logUsage = `Usage: tokenledger log --model NAME [--prompt N] [--completion N] [flags]
       tokenledger log --stdin < events.json

Logs one usage event into the configured store, by the same rules as
POST /api/tokens (docs/api.md). With --stdin it reads a request body from
standard input instead: one event, an array of events or {"events": [...]}.

The store is opened directly; the local file can be used by one process at
a time, so while 'tokenledger serve' runs on it, POST to its API instead.
`

// eventFlags maps the JSON name of an event field to its flag, so that a
// validation error names what the user typed.
var eventFlags = map[string]string{
	"id": "--id", "timestamp": "--timestamp", "model": "--model", "provider": "--provider",
	"userId": "--user", "sessionId": "--session",
	"promptTokens": "--prompt", "completionTokens": "--completion", "totalTokens": "--total",
	"cacheReadTokens": "--cache-read", "cacheWriteTokens": "--cache-write", "reasoningTokens": "--reasoning",
	"costUsd": "--cost",
}

func runLog(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("log")
	verboseFlag(fs, &e)
	var ev tokenledger.Event
	fs.StringVar(&ev.Model, "model", "", "the model's `name` (required)")
	fs.StringVar(&ev.Provider, "provider", "", "the provider, such as openai or anthropic")
	fs.StringVar(&ev.UserID, "user", "", "the user's `id`")
	fs.StringVar(&ev.SessionID, "session", "", "the session's `id`")
	numFlag(fs, &ev.PromptTokens, "prompt", 0, "prompt (input) `tokens`, cached ones included")
	numFlag(fs, &ev.CompletionTokens, "completion", 0, "completion (output) `tokens`, reasoning included")
	var totalTokens int64
	total := numFlag(fs, &totalTokens, "total", 0, "total `tokens` (default prompt + completion)")
	numFlag(fs, &ev.CacheReadTokens, "cache-read", 0, "cache-read `tokens` (part of --prompt)")
	numFlag(fs, &ev.CacheWriteTokens, "cache-write", 0, "cache-write `tokens` (part of --prompt)")
	numFlag(fs, &ev.ReasoningTokens, "reasoning", 0, "reasoning `tokens` (part of --completion)")
	cost := fs.String("cost", "", "the call's cost in US `dollars`, such as 0.0025")
	fs.StringVar(&ev.ID, "id", "", "idempotency `key`: the same id is counted once per UTC day (default a new UUIDv7)")
	ts := fs.String("timestamp", "", "when the call happened, RFC 3339 (default now)")
	stdin := fs.Bool("stdin", false, "read a JSON request body from standard input instead of the event flags")
	asJSON := fs.Bool("json", false, "print the result as JSON, as POST /api/tokens answers")
	// An empty provider, user or session means none, as over HTTP.
	if err := parseFlags(fs, args, logUsage, e.stdout, "provider", "user", "session"); err != nil {
		return err
	}

	var events []tokenledger.Event
	if *stdin {
		var given []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "stdin" && f.Name != "json" && f.Name != "verbose" {
				given = append(given, "--"+f.Name)
			}
		})
		if len(given) > 0 {
			return usagef("log: --stdin cannot be combined with %s", strings.Join(given, ", "))
		}
		body, err := io.ReadAll(io.LimitReader(e.stdin, httpapi.MaxBodyBytes+1))
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		if len(body) > httpapi.MaxBodyBytes {
			return usagef("log: the input is larger than 1 MiB (%d bytes); split it", httpapi.MaxBodyBytes)
		}
		if events, err = tokenledger.DecodeEvents(body); err != nil {
			return usagef("log: %s", err)
		}
	} else {
		if err := fillEvent(&ev, total, *cost, *ts); err != nil {
			return err
		}
		events = []tokenledger.Event{ev}
	}
	return logEvents(ctx, e, "log", events, *asJSON, !*stdin)
}

// logEvents logs events into the configured store and prints the result
// (as POST /api/tokens answers with asJSON). cmd names the command in
// errors; byFlags makes a validation error name the event's flag.
func logEvents(ctx context.Context, e env, cmd string, events []tokenledger.Event, asJSON, byFlags bool) error {
	cfg, err := loadConfig(e)
	if err != nil {
		return err
	}
	// Check every rule, the clock's included, before the store is opened,
	// so that a mistake gets one line and touches nothing.
	if err := precheck(events, cfg.RetentionDays); err != nil {
		var ve *tokenledger.ValidationError
		if errors.As(err, &ve) && byFlags {
			return usagef("%s: %s", cmd, flagMessage(ve))
		}
		return usagef("%s: %s", cmd, err)
	}
	a, err := openApp(ctx, e, cfg, app.Options{})
	if err != nil {
		return err
	}
	res, err := a.Service.Log(ctx, events)
	if cerr := a.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if asJSON {
		b, _ := json.Marshal(map[string]any{
			"accepted": res.Accepted, "duplicates": res.Duplicates, "ids": res.IDs,
			"storageType": httpapi.StorageType(a.Info), "degraded": res.Degraded, "costs": httpapi.CostsOf(events),
		})
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	if len(events) == 1 {
		if res.Accepted == 1 {
			fmt.Fprintf(e.stdout, "logged %d tokens for model %s, id %s, %s\n", events[0].TotalTokens, events[0].Model, res.IDs[0], costLine(&events[0]))
		} else {
			fmt.Fprintf(e.stdout, "duplicate: id %s was already counted on %s; nothing changed\n", res.IDs[0], events[0].Day())
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "logged %s, %s\n", plural(res.Accepted, "event"), plural(res.Duplicates, "duplicate"))
	return nil
}

// precheck validates events by every rule of the Service (see
// ruleService): the real Service checks them again, but only after its
// store is open.
func precheck(events []tokenledger.Event, retentionDays int) error {
	svc, err := ruleService(retentionDays)
	if err != nil {
		return err
	}
	_, err = svc.ValidateAndPrice(slices.Clone(events))
	return err
}

// ruleService is a Service over an empty memory store, for checking input
// by the Service's rules (events, days, dates) before the real store is
// opened, so that a mistake gets one line and touches nothing.
func ruleService(retentionDays int) (*tokenledger.Service, error) {
	return tokenledger.NewService(tokenledger.Config{
		Store: memstore.New(nil, 0), RetentionDays: retentionDays, Logger: slog.New(slog.DiscardHandler),
	})
}

// fillEvent completes ev from the flags that need parsing.
func fillEvent(ev *tokenledger.Event, total *wholeNumber[int64], cost, ts string) error {
	ev.Model = strings.TrimSpace(ev.Model)
	if ev.Model == "" {
		return usagef("log: --model is required (see tokenledger log --help)")
	}
	ev.TotalTokens = ev.PromptTokens + ev.CompletionTokens
	if total.set {
		ev.TotalTokens = *total.p
	}
	if cost != "" {
		n, err := tokenledger.ParseDollars(strings.TrimSpace(cost))
		if err != nil {
			return usagef("log: --cost %s, not %q", err, cost)
		}
		ev.Cost, ev.Pricing = n, tokenledger.PricedByClient
	}
	if ts != "" {
		t, err := tokenledger.ParseTimestamp(strings.TrimSpace(ts))
		if err != nil {
			return usagef("log: --timestamp must be an RFC 3339 time such as 2026-11-27T12:00:00Z, not %q", ts)
		}
		ev.SetTimestamp(t)
	}
	return nil
}

// flagMessage rewrites a validation error about a JSON field as one about
// the flag that set it.
func flagMessage(ve *tokenledger.ValidationError) string {
	msg := ve.Msg
	for _, name := range []string{"promptTokens", "completionTokens", "totalTokens", "cacheReadTokens", "cacheWriteTokens", "reasoningTokens"} {
		msg = strings.ReplaceAll(msg, name, eventFlags[name])
	}
	if f, ok := eventFlags[ve.Field]; ok {
		return f + " " + msg
	}
	return msg
}

// costLine says what an event cost and where the cost came from.
func costLine(ev *tokenledger.Event) string {
	switch ev.Pricing {
	case tokenledger.PricedByTable:
		return fmt.Sprintf("cost $%s (price table: %s)", ev.Cost, ev.PriceKey)
	case tokenledger.PricedByClient:
		return fmt.Sprintf("cost $%s (given)", ev.Cost)
	}
	return "unpriced (the model is not in the price table)"
}

// plural says how many of noun there are: "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
