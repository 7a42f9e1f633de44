package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/config"
)

const serveUsage = `Usage: tokenledger serve [--addr host:port] [--repair]

Serves the HTTP API (docs/api.md) until SIGINT or SIGTERM, then stops
accepting connections, finishes the requests in flight, and closes the
store so that everything acknowledged is on disk.

The address is --addr, else TOKENLEDGER_ADDR, else :$PORT (every
interface, as platforms that set PORT expect), else 127.0.0.1:8080. Port 0
picks a free port; the address actually listened on is printed on stdout.

When the usage file is corrupt, serve refuses to start and changes
nothing; --repair moves the corrupt file aside (nothing is deleted) and
starts with what can still be read.
`

// shutdownTimeout bounds how long serve waits for requests in flight.
const shutdownTimeout = 15 * time.Second

func runServe(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("serve")
	addr := fs.String("addr", "", "listen on `host:port` (overrides TOKENLEDGER_ADDR and PORT)")
	repair := fs.Bool("repair", false, "rename a corrupt usage file or journal to <name>.corrupt-<time> before starting (readable journal lines are kept)")
	if err := parseFlags(fs, args, serveUsage, e.stdout); err != nil {
		return err
	}
	if *addr != "" {
		if err := config.CheckListenAddr(*addr); err != nil {
			return usagef("serve: --addr must be host:port or :port (such as 127.0.0.1:8080), not %q", *addr)
		}
	}

	cfg, err := loadConfig(e)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.Addr, cfg.AddrFrom = *addr, "--addr"
	}
	log := newLogger(e.stderr, cfg.LogLevel)
	a, err := app.Open(ctx, cfg, app.Options{Logger: log, Repair: *repair, Spool: true, Migrate: true})
	if err != nil {
		return err
	}
	// Import the local file before serving, so that the first answers
	// include it; when the database is down, App.Run keeps trying.
	_ = a.Migrate(ctx)
	err = serve(ctx, a, log, e)
	if cerr := a.Close(); cerr != nil {
		log.Error("❌ closing the store failed: acknowledged events may be missing", slog.String("error", cerr.Error()))
		if err == nil {
			err = cerr
		}
	}
	if err == nil {
		log.Info("👋 tokenledger stopped; the store is closed")
	}
	return err
}

// serve listens on a.Config.Addr and serves the API until ctx ends or a
// signal arrives.
func serve(ctx context.Context, a *app.App, log *slog.Logger, e env) error {
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (from %s): %w", a.Config.Addr, a.Config.AddrFrom, err)
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "tokenledger listening on %s\n", url)
	log.Info("🚀 tokenledger listening on "+url, slog.String("addr", ln.Addr().String()), slog.String("from", a.Config.AddrFrom))

	var g group
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	g.add(func() error {
		<-sigCtx.Done()
		return nil
	}, func(error) { stop() })
	bgCtx, stopBackground := context.WithCancel(context.Background())
	g.add(func() error { return a.Run(bgCtx) }, func(error) { stopBackground() })
	g.add(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	}, func(error) {
		log.Info("🛑 shutting down: finishing requests in flight")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("requests still running after the shutdown timeout were cut off", slog.String("error", err.Error()))
			_ = srv.Close()
		}
	})
	return g.run()
}
