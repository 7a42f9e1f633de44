// Package app turns a config.Config into a running tokenledger: it opens
// the store the configuration chose, builds the Service on it, and hands
// out what the HTTP API needs. The CLI (cmd/tokenledger) and the Vercel
// functions (api/) both start here, so they run the same thing.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// ErrNotInThisBuild is matched (errors.Is) by the error Open returns when
// the configuration selects a store this build does not have yet.
var ErrNotInThisBuild = errors.New("store not available in this build")

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
}

// App is an open store and the Service on it.
type App struct {
	// Config is the configuration the App was opened with.
	Config config.Config
	// Service logs events and computes every report.
	Service *tokenledger.Service
	// Info describes the open store (kind, where, database or local).
	Info tokenledger.StoreInfo

	store     tokenledger.Store
	log       *slog.Logger
	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	migration httpapi.MigrationStatus
}

// Open opens the store cfg selects, builds the Service on it and logs one
// line saying which store, where and why. The caller must Close the App.
// It returns an error wrapping ErrNotInThisBuild for a store this build
// does not have, and the store's own error when it cannot be opened.
func Open(ctx context.Context, cfg config.Config, o Options) (*App, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Repair && cfg.Store != config.File {
		return nil, fmt.Errorf("--repair applies to the local file store only, and the store is %s (%s)", cfg.Store, cfg.StoreReason)
	}
	st, err := openStore(ctx, cfg, o, log)
	if err != nil {
		return nil, err
	}
	svc, err := tokenledger.NewService(tokenledger.Config{
		Store: st, Now: o.Now, RetentionDays: cfg.RetentionDays, Logger: log,
	})
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("build service: %w", err)
	}
	a := &App{Config: cfg, Service: svc, Info: httpapi.StoreInfoOf(st), store: st, log: log}
	log.Info(fmt.Sprintf("💾 Using the %s store at %s (%s)", a.Info.Kind, a.Info.Location, cfg.StoreReason),
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

// openStore opens the store cfg.Store names.
func openStore(ctx context.Context, cfg config.Config, o Options, log *slog.Logger) (tokenledger.Store, error) {
	switch cfg.Store {
	case config.Memory:
		return memstore.New(o.Now, cfg.RetentionDays), nil
	case config.File:
		return openFile(cfg, o, log)
	case config.Redis, config.KV:
		// The database stores are wired here once they exist: redisstore
		// (cfg.RedisURL, cfg.RedisClusterNodes) or kvrest (cfg.KVRestURL,
		// cfg.KVRestToken), both under cfg.KeyPrefix, wrapped in the
		// fallback spool on cfg.File, followed by the migration of cfg.File
		// (which sets a.migration).
		return nil, fmt.Errorf("the %s store is not available in this build yet (chosen by %s); set TOKENLEDGER_STORE=file to use the local file: %w",
			cfg.Store, cfg.StoreReason, ErrNotInThisBuild)
	}
	return nil, fmt.Errorf("unknown store kind %q", cfg.Store)
}

// Deps returns what the HTTP API needs.
func (a *App) Deps() httpapi.Deps {
	return httpapi.Deps{
		Service: a.Service,
		Logger:  a.log,
		Environment: httpapi.Environment{
			IsVercel: a.Config.Vercel, VercelEnv: a.Config.VercelEnv, Region: a.Config.VercelRegion,
		},
		AdminKey:  a.Config.AdminKey,
		Migration: a.Migration,
		Secrets:   a.Config.Secrets(),
	}
}

// Handler returns the HTTP API over the App.
func (a *App) Handler() http.Handler { return httpapi.NewServer(a.Deps()) }

// Migration returns what the migration of the local file into the
// database did; {Ran: false} until a database store runs one.
func (a *App) Migration() httpapi.MigrationStatus {
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
