// Package app turns a config.Config into a running tokenledger: it opens
// the store the configuration chose, builds the Service on it, and hands
// out what the HTTP API needs. The CLI (cmd/tokenledger) and the Vercel
// functions (api/) both start here, so they run the same thing.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/metrics"
	"github.com/tokenledger/tokenledger/internal/migrate"
	"github.com/tokenledger/tokenledger/internal/proxy"
	"github.com/tokenledger/tokenledger/internal/redact"
	"github.com/tokenledger/tokenledger/pricing"
	"github.com/tokenledger/tokenledger/store/fallback"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// Options are what Open needs besides the Config.
type Options struct {
	// Logger receives the startup line and every log line of the store
	// and the Service; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now tokenledger.Clock
	// Repair moves a corrupt local file aside (filestore.Repair) before
	// opening it, so that the store starts fresh. Only for the file store.
	Repair bool
	// Spool wraps a database store in the fallback spool (cfg.SpoolDir),
	// so that an outage never loses an event: for serve and the Vercel
	// functions. One-shot commands go to the database directly and fail
	// when it is down.
	Spool bool
	// AllowDown opens a database store even when it does not answer, so
	// that its check can report the failure (tokenledger test).
	AllowDown bool
	// Migrate lets Migrate, Run and DeliverAndMigrate import cfg.File into a database
	// store (when cfg.Migrate allows it).
	Migrate bool
}

// App is an open store and the Service on it.
type App struct {
	// Config is the configuration the App was opened with.
	Config config.Config
	// Service logs events and computes every report.
	Service *tokenledger.Service
	// Prices is the price table the Service prices events with: the
	// built-in table and the models of cfg.Prices.
	Prices *pricing.Table
	// Info describes the open store (kind, where, database or local).
	Info tokenledger.StoreInfo
	// Proxy is the recording proxy; nil unless cfg.Proxy.On.
	Proxy *proxy.Proxy
	// Metrics are served at GET /metrics.
	Metrics *metrics.Metrics

	store     tokenledger.Store
	db        tokenledger.Store // the database store, unwrapped; nil for file and memory
	fb        *fallback.Store   // the spool in front of db; nil without Options.Spool
	log       *slog.Logger
	now       tokenledger.Clock
	closeOnce sync.Once
	closeErr  error

	migrate   bool       // Options.Migrate && Config.Migrate
	migrateMu sync.Mutex // one migration at a time
	migrated  bool       // a migration finished

	mu        sync.Mutex
	migration migrate.Status
}

// Open opens the store cfg selects, builds the Service on it and logs one
// line saying which store, where and why. The caller must Close the App.
// It returns the store's own error when it cannot be opened; a database
// that does not answer is an error (wrapping tokenledger.ErrUnavailable)
// only without Options.Spool and Options.AllowDown.
func Open(ctx context.Context, cfg config.Config, o Options) (*App, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Repair && cfg.Store != config.File {
		return nil, fmt.Errorf("--repair applies to the local file store only, and the store is %s (%s)", cfg.Store, cfg.StoreReason)
	}
	prices, err := pricing.Load(cfg.Prices)
	if err != nil {
		return nil, err
	}
	met := newMetrics(cfg)
	st, db, fb, err := openStore(ctx, cfg, o, met, log)
	if err != nil {
		return nil, err
	}
	if fb != nil {
		met.WatchFallback(fb.FallbackStatus)
	}
	svc, err := tokenledger.NewService(tokenledger.Config{
		Store: st, Now: o.Now, RetentionDays: cfg.RetentionDays, Logger: log, Prices: prices, Observer: met,
	})
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("build service: %w", err)
	}
	a := &App{Config: cfg, Service: svc, Prices: prices, Metrics: met, Info: httpapi.StoreInfoOf(st), store: st, db: db, fb: fb, log: log, now: o.Now,
		migrate: o.Migrate && cfg.Migrate && db != nil}
	if cfg.Proxy.On {
		if a.Proxy, err = newProxy(cfg.Proxy, svc, met, log); err != nil {
			_ = st.Close()
			return nil, err
		}
	}
	line := fmt.Sprintf("💾 Using the %s store at %s (%s)", a.Info.Kind, a.Info.Location, cfg.StoreReason)
	if cfg.Prices != "" {
		line += fmt.Sprintf("; prices from the built-in table and %s (%d models)", cfg.Prices, prices.Len())
	}
	if fb != nil {
		line += fmt.Sprintf("; fallback spool %s", cfg.SpoolDir)
	}
	if cfg.Store == config.Redis && cfg.RedisWaitReplicas > 0 {
		line += fmt.Sprintf("; each write waits for %d %s (up to %s)", cfg.RedisWaitReplicas, map[bool]string{true: "replica", false: "replicas"}[cfg.RedisWaitReplicas == 1], cfg.RedisWaitTimeout)
	}
	if a.Proxy != nil {
		line += "; recording proxy on at /proxy/{name}/"
	}
	if a.migrate {
		line += fmt.Sprintf("; migrating %s once if it exists", cfg.File)
	}
	log.Info(line,
		slog.String("store", a.Info.Kind), slog.String("location", a.Info.Location),
		slog.String("why", cfg.StoreReason), slog.Int("retentionDays", svc.RetentionDays()))
	switch {
	case cfg.Store == config.Memory:
		log.Warn("⚠️ The memory store keeps nothing: all usage is lost when the process exits")
	case cfg.Store == config.File && cfg.Vercel:
		log.Warn("⚠️ On Vercel the local file lives in the temp dir and does not survive between instances; set KV_REST_API_URL and KV_REST_API_TOKEN to keep usage in Vercel KV")
	}
	return a, nil
}

// openStore opens the store cfg.Store names, measured by met. For a
// database it also returns the database store itself and, with o.Spool,
// the fallback spool in front of it (which is then the store to use).
func openStore(ctx context.Context, cfg config.Config, o Options, met *metrics.Metrics, log *slog.Logger) (st, db tokenledger.Store, fb *fallback.Store, err error) {
	switch cfg.Store {
	case config.Memory:
		return memstore.New(o.Now, cfg.RetentionDays), nil, nil, nil
	case config.File:
		st, err := openFile(cfg, o, log)
		if err != nil {
			return nil, nil, nil, err
		}
		return met.Store(st), nil, nil, nil
	case config.Redis, config.KVRest:
		db, down, err := openDatabase(ctx, cfg, o, log)
		if err != nil {
			return nil, nil, nil, err
		}
		db = met.Store(db)
		if !o.Spool {
			return db, db, nil, nil
		}
		fb, err := withSpool(db, down, cfg, o, log)
		if err != nil {
			_ = db.Close()
			return nil, nil, nil, err
		}
		return fb, db, fb, nil
	}
	return nil, nil, nil, fmt.Errorf("unknown store kind %q", cfg.Store)
}

// redact removes the configuration's secrets from msg.
func (a *App) redact(msg string) string { return redact.String(msg, a.Config.Secrets()) }

// Deps returns what the HTTP API needs.
func (a *App) Deps() httpapi.Deps {
	return httpapi.Deps{
		Service: a.Service,
		Logger:  a.log,
		Environment: httpapi.Environment{
			IsVercel: a.Config.Vercel, VercelEnv: a.Config.VercelEnv, Region: a.Config.VercelRegion,
		},
		AdminKey:  a.Config.AdminKey,
		APIKey:    a.Config.APIKey,
		ReadKey:   a.Config.ReadKey,
		Migration: a.Migration,
		Secrets:   a.Config.Secrets(),
		Prices:    a.Prices,
		Proxy:     a.Proxy,
		Metrics:   a.Metrics,

		RateLimit:         a.Config.RateLimit,
		RateBurst:         a.Config.RateBurst,
		TrustForwardedFor: a.Config.TrustForwardedFor,
	}
}

// Handler returns the HTTP API over the App.
func (a *App) Handler() http.Handler { return httpapi.NewServer(a.Deps()) }

// Migration returns what the migration of the local file into the
// database did; {Ran: false} until a database store runs one.
func (a *App) Migration() migrate.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.migration
}

// Close closes the store, which makes what it buffered durable. It
// returns the store's error; calling it again returns the same.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		if err := a.store.Close(); err != nil {
			a.closeErr = fmt.Errorf("close %s store: %w", a.Info.Kind, err)
		}
	})
	return a.closeErr
}
