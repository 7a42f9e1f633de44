// Package serverless runs tokenledger as Vercel Go functions: each function
// in api/ is a thin Handler that calls Serve. The App (store, fallback
// spool, migration) is built once per function instance, from the
// environment the function passes in, and reused by every request the
// instance serves. Since a serverless instance gets no background time,
// each request first gives the migration and the spool delivery a short
// budget (app.App.DeliverAndMigrate).
//
// This package is not internal because Vercel's Go builder compiles each
// function from outside the module's tree, where internal packages cannot
// be imported.
package serverless

import (
	"context"
	"io"
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
	err     error        // why the instance could not start, secrets removed
	log     *slog.Logger // logs the start failure, secrets removed

	logOutput io.Writer // where logs go; os.Stderr when nil
}

// Default is the instance the api/ functions share within one process.
var Default Instance

// Serve answers one request through Default.
func Serve(w http.ResponseWriter, r *http.Request, getenv func(string) string) {
	Default.Serve(w, r, getenv)
}

// Serve answers one request, building the instance from getenv first if
// this is its first request. When the instance cannot start (a malformed
// variable, a damaged spool) every request gets the contract's 500, and
// the reason, secrets removed, is logged with each one: the function log
// is where the operator sees it, and a client has no use for it.
func (i *Instance) Serve(w http.ResponseWriter, r *http.Request, getenv func(string) string) {
	i.once.Do(func() { i.start(getenv) })
	if i.err != nil {
		i.log.LogAttrs(r.Context(), slog.LevelError, "tokenledger could not start; answering 500",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", i.err.Error()))
		httpapi.InternalErrorHandler().ServeHTTP(w, r)
		return
	}
	i.app.DeliverAndMigrate(r.Context())
	i.handler.ServeHTTP(w, r)
}

// start builds the App. Logs go to stderr, which Vercel collects.
func (i *Instance) start(getenv func(string) string) {
	out := i.logOutput
	if out == nil {
		out = os.Stderr
	}
	// Every line goes through the redactor, as the CLI's do. Until the
	// configuration has loaded, the secrets are the secret variables'
	// values, valid or not.
	red := redact.New(config.SecretsFromEnv(getenv)...)
	i.log = slog.New(redact.NewHandler(slog.NewTextHandler(out, nil), red))
	cfg, err := config.Load(getenv)
	if err != nil {
		i.err = redactError(err, red)
		return
	}
	red = redact.New(cfg.Secrets()...)
	log := slog.New(redact.NewHandler(slog.NewTextHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}), red))
	i.log = log
	a, err := app.Open(context.Background(), cfg, app.Options{Logger: log, Spool: true, Migrate: true})
	if err != nil {
		i.err = redactError(err, red)
		return
	}
	i.app, i.handler = a, a.Handler()
}

// redactError returns err, or an error of its message with secrets
// removed when it holds one.
func redactError(err error, red *redact.Redactor) error {
	if msg := red.String(err.Error()); msg != err.Error() {
		return redacted(msg)
	}
	return err
}

// redacted is an error whose message had secrets removed.
type redacted string

func (e redacted) Error() string { return string(e) }

// dashboard serves the page and its files; it holds no store.
var dashboard = httpapi.DashboardHandler()

// ServeDashboard answers a request for the dashboard (api/dashboard). The
// page reads /api/tokens and /api/test, which are their own functions, so
// no App is built here.
func ServeDashboard(w http.ResponseWriter, r *http.Request) {
	dashboard.ServeHTTP(w, r)
}

// Close releases what the instance opened (its store, its spool). Vercel
// never calls it; tests that run several instances in one process do.
func (i *Instance) Close() error {
	if i.app == nil {
		return nil
	}
	return i.app.Close()
}
