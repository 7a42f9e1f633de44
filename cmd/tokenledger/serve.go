package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/buildinfo"
	"github.com/tokenledger/tokenledger/internal/config"
)

const serveUsage = `Usage: tokenledger serve [--addr host:port] [--repair] [--insecure] [--pprof 127.0.0.1:6060]

Serves the HTTP API (docs/api.md) until SIGINT or SIGTERM, then stops
accepting connections, finishes the requests in flight, and closes the
store so that everything acknowledged is on disk.

The address is --addr, else TOKENLEDGER_ADDR, else :$PORT (every
interface, as platforms that set PORT expect), else 127.0.0.1:8080. Port 0
picks a free port; the address actually listened on is printed on stdout.

Without TOKENLEDGER_API_KEY, serve listens only on a loopback address
(127.0.0.1, ::1, localhost): on any other address — :PORT included, which
is every interface — anyone who reaches the port could log and read
usage, so serve refuses unless --insecure is given. TOKENLEDGER_READ_KEY
guards reading, TOKENLEDGER_ADMIN_KEY enables reset (README "Security").

When the usage file is corrupt, serve refuses to start and changes
nothing; --repair moves the corrupt file aside (nothing is deleted) and
starts with what can still be read.

--pprof serves Go's profiler (net/http/pprof: /debug/pprof/, e.g.
go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=20) on a
second, loopback-only address, for finding what costs CPU under load
(BENCHMARKS.md). It is off by default.
`

// shutdownTimeout bounds how long serve waits for requests in flight.
const shutdownTimeout = 15 * time.Second

// httpTimeouts bound how long one client may hold a connection.
type httpTimeouts struct {
	// readHeader bounds reading the request line and headers: a client
	// that sends them byte by byte (slowloris) is cut off.
	readHeader time.Duration
	// read bounds reading the whole request, body included: at most 1 MiB
	// in 30 s is about 35 KB/s, which every real client beats.
	read time.Duration
	// write bounds the handler and writing the answer, from the end of
	// the headers; the slowest handler (the store check) takes at most
	// 5 s, a database call at most TOKENLEDGER_DB_TIMEOUT.
	write time.Duration
	// idle bounds how long a keep-alive connection waits for its next
	// request.
	idle time.Duration
}

// defaultTimeouts are serve's.
var defaultTimeouts = httpTimeouts{
	readHeader: 10 * time.Second,
	read:       30 * time.Second,
	write:      60 * time.Second,
	idle:       120 * time.Second,
}

// maxHeaderBytes bounds the request line and headers.
const maxHeaderBytes = 64 << 10

// newHTTPServer returns the http.Server serve runs h with: bounded
// timeouts and headers, and the server's own errors (TLS handshakes,
// broken connections) logged through log, so that they are redacted too.
func newHTTPServer(h http.Handler, log *slog.Logger, t httpTimeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// onlyLoopback reports whether addr (host:port) can be reached from this
// machine only: a loopback IP or "localhost". An empty host (":8080",
// every interface), 0.0.0.0, any other IP and any other host name (it
// may resolve to anything) can be reached from elsewhere.
func onlyLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // an IPv6 zone
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkExposure refuses to serve on an address other machines can reach
// without an API key, unless insecure; it returns the warnings to log
// when serving goes ahead with something open.
func checkExposure(cfg config.Config, insecure bool) (warnings []string, err error) {
	if onlyLoopback(cfg.Addr) {
		return nil, nil
	}
	where := fmt.Sprintf("%s (from %s)", cfg.Addr, cfg.AddrFrom)
	if cfg.APIKey == "" {
		if !insecure {
			return nil, fmt.Errorf("serve: refusing to listen on %s without TOKENLEDGER_API_KEY, since anyone who reaches that address could log and read usage; set TOKENLEDGER_API_KEY (and TOKENLEDGER_READ_KEY), listen on 127.0.0.1, or pass --insecure", where)
		}
		return []string{fmt.Sprintf("⚠️ Serving on %s without TOKENLEDGER_API_KEY (--insecure): anyone who reaches it can log usage", where)}, nil
	}
	if cfg.ReadKey == "" {
		return []string{fmt.Sprintf("⚠️ Serving on %s without TOKENLEDGER_READ_KEY: anyone who reaches it can read usage (logging needs the API key)", where)}, nil
	}
	return nil, nil
}

func runServe(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("serve")
	addr := fs.String("addr", "", "listen on `host:port` (overrides TOKENLEDGER_ADDR and PORT)")
	repair := fs.Bool("repair", false, "rename a corrupt usage file or journal to <name>.corrupt-<time> before starting (readable journal lines are kept)")
	insecure := fs.Bool("insecure", false, "serve on an address other machines can reach even without TOKENLEDGER_API_KEY")
	pprofAddr := fs.String("pprof", "", "serve the Go profiler on this loopback `host:port` (off by default)")
	if err := parseFlags(fs, args, serveUsage, e.stdout); err != nil {
		return err
	}
	if *pprofAddr != "" && !onlyLoopback(*pprofAddr) {
		return usagef("serve: --pprof must be a loopback host:port such as 127.0.0.1:6060 (profiles show the process's internals), not %q", *pprofAddr)
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
	warnings, err := checkExposure(cfg, *insecure)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.LogLevel, e.redactor)
	log.Info("🔐 " + describeAccess(cfg))
	for _, w := range warnings {
		log.Warn(w)
	}
	a, err := app.Open(ctx, cfg, app.Options{Logger: log, Repair: *repair, Spool: true, Migrate: true})
	if err != nil {
		return err
	}
	// Import the local file before serving, so that the first answers
	// include it; when the database is down, App.Run keeps trying.
	_ = a.Migrate(ctx)
	err = serve(ctx, a, log, e, *pprofAddr)
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

// describeAccess says in one line who may do what, for the startup log.
// It names the variables, never their values.
func describeAccess(cfg config.Config) string {
	parts := []string{"logging is open to anyone who reaches the server", "reading is open", "reset is disabled"}
	if cfg.APIKey != "" {
		parts[0] = "logging needs TOKENLEDGER_API_KEY"
	}
	if cfg.ReadKey != "" {
		parts[1] = "reading needs TOKENLEDGER_READ_KEY or TOKENLEDGER_API_KEY"
	}
	if cfg.AdminKey != "" {
		parts[2] = "reset needs TOKENLEDGER_ADMIN_KEY"
	}
	line := "Access: " + strings.Join(parts, "; ")
	if cfg.RateLimit > 0 {
		line += fmt.Sprintf("; at most %g requests per second per client (bursts of %d)", cfg.RateLimit, cfg.RateBurst)
	} else {
		line += "; no rate limit"
	}
	return line
}

// serve listens on a.Config.Addr and serves the API until ctx ends or a
// signal arrives; with pprofAddr, it also serves the profiler there.
func serve(ctx context.Context, a *app.App, log *slog.Logger, e env, pprofAddr string) error {
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (from %s): %w", a.Config.Addr, a.Config.AddrFrom, err)
	}
	var pprofLn net.Listener
	if pprofAddr != "" {
		if pprofLn, err = net.Listen("tcp", pprofAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on %s (--pprof): %w", pprofAddr, err)
		}
	}
	srv := newHTTPServer(a.Handler(), log, defaultTimeouts)
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "tokenledger listening on %s\n", url)
	log.Info("🚀 tokenledger "+buildinfo.Version()+" listening on "+url, slog.String("addr", ln.Addr().String()), slog.String("from", a.Config.AddrFrom))

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
	if pprofLn != nil {
		psrv := newHTTPServer(pprofHandler(), log, defaultTimeouts)
		psrv.WriteTimeout = 0 // a CPU profile takes as long as asked
		log.Info("🔬 Go profiler on http://" + pprofLn.Addr().String() + "/debug/pprof/ (--pprof)")
		g.add(func() error {
			if err := psrv.Serve(pprofLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve pprof: %w", err)
			}
			return nil
		}, func(error) { _ = psrv.Close() })
	}
	return g.run()
}

// pprofHandler serves net/http/pprof on its own mux (never on the API's).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
