// Package serverless runs tokenledger as Vercel Go functions: each function
// in api/ is a thin Handler that calls Serve. The App (store, fallback
// spool, migration) is built once per function instance, from the
// environment the function passes in, and reused by every request the
// instance serves. Since a serverless instance gets no background time,
// each request first gives the migration and the spool delivery a short
// budget (app.App.Prepare).
//
// This package is not internal because Vercel's Go builder compiles each
// function from outside the module's tree, where internal packages cannot
// be imported.
package serverless

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/redact"
)

// Instance is one function instance's tokenledger, built on first use.
type Instance struct {
	once    sync.Once
	app     *app.App
	handler http.Handler
	err     error // why the instance could not start, secrets removed
}

// Default is the instance the api/ functions share within one process.
var Default Instance

// Serve answers one request through Default.
func Serve(w http.ResponseWriter, r *http.Request, getenv func(string) string) {
	Default.Serve(w, r, getenv)
}

// Serve answers one request, building the instance from getenv first if
// this is its first request. When the instance cannot start (a malformed
// variable, a damaged spool) every request gets 500 with the reason in one
// sentence, secrets removed.
func (i *Instance) Serve(w http.ResponseWriter, r *http.Request, getenv func(string) string) {
	i.once.Do(func() { i.start(getenv) })
	if i.err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "tokenledger could not start: " + i.err.Error()})
		return
	}
	i.app.Prepare(r.Context())
	i.handler.ServeHTTP(w, r)
}

// start builds the App. Logs go to stderr, which Vercel collects.
func (i *Instance) start(getenv func(string) string) {
	cfg, err := config.Load(getenv)
	if err != nil {
		i.err = err
		return
	}
	// Every line goes through the redactor, as the CLI's do.
	log := slog.New(redact.NewHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}), redact.New(cfg.Secrets()...)))
	a, err := app.Open(context.Background(), cfg, app.Options{Logger: log, Spool: true, Migrate: true})
	if err != nil {
		i.err = err
		if msg := httpapi.Redact(err.Error(), cfg.Secrets()); msg != err.Error() {
			i.err = redacted(msg)
		}
		return
	}
	i.app, i.handler = a, a.Handler()
}

// redacted is an error whose message had secrets removed.
type redacted string

func (e redacted) Error() string { return string(e) }
