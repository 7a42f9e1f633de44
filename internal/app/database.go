package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/migrate"
	"github.com/tokenledger/tokenledger/store/fallback"
	"github.com/tokenledger/tokenledger/store/redis"
)

// openDatabase opens the database store cfg selects. With o.Spool (or
// o.AllowDown), a database that is down at start is not an error: the store
// is made without connecting, down says why, and the fallback spool takes
// the events until it answers.
func openDatabase(ctx context.Context, cfg config.Config, o Options, log *slog.Logger) (db tokenledger.Store, down error, err error) {
	allowDown := o.Spool || o.AllowDown
	switch cfg.Store {
	case config.Redis:
		opts := redis.RedisOptions{
			URL: cfg.RedisURL, ClusterNodes: cfg.RedisClusterNodes, KeyPrefix: cfg.KeyPrefix,
			RetentionDays: cfg.RetentionDays, DialTimeout: cfg.DBTimeout, ReadTimeout: cfg.DBTimeout,
			WriteTimeout: cfg.DBTimeout, Logger: log, Now: o.Now,
			WaitReplicas: cfg.RedisWaitReplicas, WaitTimeout: cfg.RedisWaitTimeout,
		}
		return openOrDown(ctx, 2*cfg.DBTimeout, allowDown,
			func(ctx context.Context) (*redis.Store, error) { return redis.OpenRedis(ctx, opts) },
			func() (*redis.Store, error) { return redis.NewRedis(opts) })
	case config.KVRest:
		opts := redis.KVRestOptions{
			URL: cfg.KVRestURL, Token: cfg.KVRestToken, Prefix: cfg.KeyPrefix,
			RetentionDays: cfg.RetentionDays, Timeout: cfg.DBTimeout, Logger: log, Now: o.Now,
		}
		return openOrDown(ctx, 2*cfg.DBTimeout, allowDown,
			func(ctx context.Context) (*redis.Store, error) { return redis.OpenKVRest(ctx, opts) },
			func() (*redis.Store, error) { return redis.NewKVRest(opts) })
	}
	return nil, nil, fmt.Errorf("unknown database store %q", cfg.Store)
}

// openOrDown opens a database store with open, which connects, within
// timeout. When the database is unavailable and allowDown is set, it makes
// the store with create instead, without connecting, and returns why the
// database is down.
func openOrDown[S tokenledger.Store](ctx context.Context, timeout time.Duration, allowDown bool,
	open func(context.Context) (S, error), create func() (S, error)) (db tokenledger.Store, down error, err error) {
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := open(octx)
	if err == nil {
		return st, nil, nil
	}
	if !allowDown || !errors.Is(err, tokenledger.ErrUnavailable) {
		return nil, nil, err
	}
	st, nerr := create()
	if nerr != nil {
		return nil, nil, nerr
	}
	return st, err, nil
}

// withSpool wraps the database store in the fallback spool in cfg.SpoolDir, on the clock o.Now.
func withSpool(db tokenledger.Store, down error, cfg config.Config, o Options, log *slog.Logger) (*fallback.Store, error) {
	fb, err := fallback.New(db, cfg.SpoolDir, fallback.Options{Logger: log, ReadWait: cfg.DBTimeout, Now: o.Now})
	if err != nil {
		return nil, err
	}
	if down != nil {
		fb.Unavailable(down)
	}
	return fb, nil
}

// migrationBudget bounds one migration attempt at start-up and on the
// first requests of a serverless instance.
const migrationBudget = 60 * time.Second

// Migrate imports the local files (cfg.MigrateFiles) into the database,
// once: after a successful run it does nothing. It returns nil for the file
// and memory stores, and when migration is turned off
// (TOKENLEDGER_MIGRATE=0). The outcome, or the error, is kept for
// GET /api/test.
func (a *App) Migrate(ctx context.Context) error {
	if a.db == nil || !a.migrate {
		return nil
	}
	a.migrateMu.Lock()
	defer a.migrateMu.Unlock()
	if a.migrated {
		return nil
	}
	var st migrate.Status
	var err error
	for _, file := range a.Config.MigrateFiles {
		var res migrate.Result
		res, err = migrate.Run(ctx, file, a.db, migrate.Options{
			Now: a.now, RetentionDays: a.Config.RetentionDays, Logger: a.log,
		})
		st.Add(res)
		a.Metrics.Migrated(res.Migrated)
		if err != nil {
			st.Error = a.redact(err.Error())
			a.log.Warn("⚠️ Migration of the local file into the database did not finish; it will be tried again", slog.String("file", file), slog.String("error", st.Error))
			break
		}
	}
	if err == nil {
		a.migrated = true
	}
	a.mu.Lock()
	a.migration = st
	a.mu.Unlock()
	return err
}

// MigrateFile imports path into the database now, whatever Migrate did
// before and whether or not the database holds the file's marker
// (tokenledger migrate). Running it again counts nothing twice. It returns
// an error when the store is not a database.
func (a *App) MigrateFile(ctx context.Context, path string, dryRun bool, progress func(done, total int)) (migrate.Result, error) {
	if a.db == nil {
		return migrate.Result{}, fmt.Errorf("migrate imports the local file into a database, and the store is %s (%s); set REDIS_URL, or KV_REST_API_URL and KV_REST_API_TOKEN", a.Config.Store, a.Config.StoreReason)
	}
	return migrate.Run(ctx, path, a.db, migrate.Options{
		Now: a.now, RetentionDays: a.Config.RetentionDays, Logger: a.log, DryRun: dryRun, Progress: progress,
		IgnoreMark: true,
	})
}

// Run does the background work of a long-lived process until ctx ends:
// it retries the migration until it succeeds and delivers spooled events
// (see fallback.Store.Run). serve runs it as one of its actors; it returns
// nil when ctx ends.
func (a *App) Run(ctx context.Context) error {
	done := make(chan struct{})
	if a.fb != nil {
		go func() {
			defer close(done)
			_ = a.fb.Run(ctx)
		}()
	} else {
		close(done)
	}
	wait := time.Second
	for {
		mctx, cancel := context.WithTimeout(ctx, migrationBudget)
		err := a.Migrate(mctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
	<-ctx.Done()
	<-done
	return nil
}

// serverlessBudget bounds the work a serverless request does for the
// instance before its own: migration and delivering spooled events.
const serverlessBudget = 2 * time.Second

// DeliverAndMigrate does, within one short budget (serverlessBudget, for both),
// what a serverless instance has no background time for: delivering
// spooled events first (acknowledged events wait there, and reads are
// refused until they are delivered), then, with the time left, the
// migration on its first requests. Failures are logged and retried on the
// next request; the request itself goes on.
func (a *App) DeliverAndMigrate(ctx context.Context) {
	if a.db == nil {
		return
	}
	drain := a.fb != nil && a.fb.FallbackStatus().Active
	a.migrateMu.Lock()
	migrate := a.migrate && !a.migrated
	a.migrateMu.Unlock()
	if !drain && !migrate {
		return // the usual request: no timer
	}
	budget, cancel := context.WithTimeout(ctx, serverlessBudget)
	defer cancel()
	if drain {
		// With nothing spooled, a failure is only the database's check:
		// the fallback has logged the outage already.
		if _, err := a.fb.Drain(budget); err != nil && ctx.Err() == nil && a.fb.Spool().Pending() > 0 {
			a.log.Warn("📦 Spooled events not delivered yet; trying again on the next request", slog.String("error", a.redact(err.Error())))
		}
	}
	if migrate && budget.Err() == nil {
		_ = a.Migrate(budget) // it checks again, under migrateMu, that no other request has done it
	}
}
