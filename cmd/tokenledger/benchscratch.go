package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/config"
)

// A bench never leaves its events in a ledger it did not create: its
// events are real events (bench-<run>-… models and users, real tokens and
// cost), and once in a store only a reset of everything removes them.
//
// With --url, bench cannot delete what it sends, so it refuses a server
// that already holds usage (checkEmptyTarget) unless --into-live-data.
// With --store, it runs on a scratch store of the same kind instead
// (scratchConfig) and deletes it afterwards.

// scratchRetentionDays is the retention of a scratch database prefix: the
// run's days are read back within it (a run that crosses one midnight
// reads three), and whatever a bench killed mid-run leaves there expires
// within three days.
const scratchRetentionDays = 2

// checkEmptyTarget refuses, in one sentence, a server that already holds
// usage (any request in its retention window), since bench's events would
// stay in it for good.
func checkEmptyTarget(ctx context.Context, e env, base, apiKey string) error {
	r, err := newRemote("bench", base, e.getenv)
	if err != nil {
		return err
	}
	if apiKey != "" {
		r.key = apiKey // the API key reads too
	}
	var answer struct {
		Stats *tokenledger.Stats `json:"stats"`
	}
	err = r.get(ctx, "/api/tokens?action=stats", &answer)
	if err == nil && answer.Stats == nil {
		err = errors.New("its answer to GET /api/tokens?action=stats has no stats")
	}
	if err != nil {
		return fmt.Errorf("bench: cannot tell whether %s already holds usage (%w); bench's events stay in the ledger for good, so point it at a server on an empty store, or give --into-live-data to load this one anyway", r.base, err)
	}
	if n := answer.Stats.TotalRequests; n > 0 {
		return usagef("bench: %s already holds usage (%s in its retention window), and bench's events would stay in it for good (removing them takes the admin key and a reset of everything); point bench at a server on an empty store, or give --into-live-data to load this one anyway", r.base, plural(int(n), "request"))
	}
	return nil
}

// scratchConfig returns cfg changed to a store of the same kind that the
// run has to itself, and a function that empties it, closes the App open
// on it (nil when it did not open) and deletes it afterwards:
//   - the file store: a new file in a new directory beside the configured
//     file (the same disk), removed whole afterwards;
//   - Redis and the REST store: the key prefix <prefix>-bench-<run>, which
//     the real prefix's keys never match, emptied afterwards by a reset of
//     that prefix; the reset leaves its two time markers there, which
//     expire after scratchRetentionDays + 1 days;
//   - the memory store: itself (it keeps nothing anyway).
//
// The local file is neither migrated nor touched with a database.
func scratchConfig(cfg config.Config, runID string) (config.Config, func(context.Context, *app.App) error, error) {
	cfg.Migrate, cfg.MigrateFiles = false, nil
	dir, err := scratchDir(cfg.File, runID)
	if err != nil {
		return cfg, nil, err
	}
	cfg.File = filepath.Join(dir, "token_usage.json")
	cfg.SpoolDir = cfg.File + ".spool"
	removeDir := func() error {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("bench: remove its scratch directory %s: %w", dir, err)
		}
		return nil
	}
	switch cfg.Store {
	case config.Redis, config.KVRest:
		cfg.KeyPrefix += "-bench-" + runID
		if len(cfg.KeyPrefix) > 64 { // the prefix's bound (config)
			cfg.KeyPrefix = "tokenledger-bench-" + runID
		}
		cfg.RetentionDays = scratchRetentionDays
		return cfg, func(ctx context.Context, a *app.App) error {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			var err error
			if a != nil {
				if err = a.Service.Reset(ctx); err != nil {
					err = fmt.Errorf("bench: delete its scratch keys under the prefix %s (they expire within %d days anyway): %w", cfg.KeyPrefix, scratchRetentionDays+1, err)
				}
				err = errors.Join(err, a.Close())
			}
			return errors.Join(err, removeDir())
		}, nil
	}
	return cfg, func(_ context.Context, a *app.App) error {
		var err error
		if a != nil {
			err = a.Close()
		}
		return errors.Join(err, removeDir())
	}, nil
}

// scratchDir creates the run's own directory: beside the configured file
// when its directory exists (the same disk as the real store), in the
// system's temporary directory otherwise (so that bench creates no
// directory it would leave behind).
func scratchDir(file, runID string) (string, error) {
	parent := filepath.Dir(file)
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		parent = ""
	}
	dir, err := os.MkdirTemp(parent, ".tokenledger-bench-"+runID+"-")
	if err != nil {
		return "", fmt.Errorf("bench: create a scratch directory: %w", err)
	}
	return dir, nil
}

// scratchLine says where a --store run writes, for the report.
func scratchLine(a *app.App, cfg config.Config) string {
	switch cfg.Store {
	case config.Redis, config.KVRest:
		return fmt.Sprintf("the %s store at %s under bench's own key prefix %s (%s; deleted afterwards)", a.Info.Kind, a.Info.Location, cfg.KeyPrefix, cfg.StoreReason)
	}
	return fmt.Sprintf("the %s store at %s (%s; bench's own, deleted afterwards)", a.Info.Kind, a.Info.Location, cfg.StoreReason)
}
