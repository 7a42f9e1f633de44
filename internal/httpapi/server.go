// Package httpapi is tokenledger's HTTP surface, as docs/api.md describes
// it. NewServer returns the whole API as one http.Handler; routes.go lists
// every route in one place.
package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/metrics"
	"github.com/tokenledger/tokenledger/internal/migrate"
	"github.com/tokenledger/tokenledger/internal/proxy"
	"github.com/tokenledger/tokenledger/pricing"
)

// MaxBodyBytes is the largest POST body accepted: 1 MiB.
const MaxBodyBytes = 1 << 20

// DefaultCheckTimeout bounds the store check of GET /api/test and
// GET /readyz when Deps.CheckTimeout is zero.
const DefaultCheckTimeout = 5 * time.Second

// Environment is where the process runs, as reported by GET /api/test.
type Environment struct {
	// IsVercel is true on Vercel (VERCEL=1).
	IsVercel bool
	// VercelEnv and Region are VERCEL_ENV and VERCEL_REGION, "" when unset.
	VercelEnv, Region string
}

// Deps are what the server needs. Only Service is required.
type Deps struct {
	// Service logs events and computes every report.
	Service *tokenledger.Service
	// Logger receives error details and request logs; slog.Default() when nil.
	Logger *slog.Logger
	// Environment is reported by GET /api/tokens and GET /api/test.
	Environment Environment
	// AdminKey, when not empty, allows DELETE /api/tokens with
	// "Authorization: Bearer <AdminKey>" (or "X-API-Key: <AdminKey>").
	// When empty, DELETE is refused.
	AdminKey string
	// APIKey, when not empty, is needed to log events (POST /api/tokens)
	// and also allows reading. When empty, anyone who reaches the server
	// may log events.
	APIKey string
	// ReadKey, when not empty, is needed (or APIKey) to read usage
	// (GET /api/tokens). When empty, anyone who reaches the server may
	// read usage.
	ReadKey string
	// RateLimit, when above 0, limits each client to this many requests
	// per second (a token bucket of RateBurst requests); more get 429
	// with Retry-After. GET /healthz is not limited.
	RateLimit float64
	// RateBurst is how many requests a client may send at once; 1 when
	// RateLimit is set and RateBurst is not.
	RateBurst int
	// TrustForwardedFor makes the rate limit identify a client by the
	// last X-Forwarded-For address instead of the connection's: only for
	// a server that is reached through exactly one reverse proxy, which
	// appends the address it sees. Anyone else can put any address there.
	TrustForwardedFor bool
	// Migration reports the migration's outcome; nil means no migration
	// ran ({"ran": false, "migrated": 0, "skipped": 0}).
	Migration func() migrate.Status
	// Secrets are removed from every message the API shows (such as a
	// failed store check's error), in case a backend repeats one.
	Secrets []string
	// CheckTimeout bounds the store check; DefaultCheckTimeout when zero.
	CheckTimeout time.Duration
	// Prices is the table the Service prices events with, for GET
	// /api/prices; nil when there is none.
	Prices *pricing.Table
	// Proxy serves /proxy/{name}/…; nil when the proxy is off.
	Proxy *proxy.Proxy
	// Metrics serves GET /metrics (read key) and times every request;
	// nil for none (the route is then 404).
	Metrics *metrics.Metrics
}

// server holds the resolved dependencies shared by the handlers.
type server struct {
	Deps
	log         *slog.Logger
	storageType string
	info        tokenledger.StoreInfo
	limiter     *limiter // nil without a rate limit
	throttle    *throttle
}

// NewServer returns the HTTP API over d.Service. It panics when d.Service
// is nil, which is a programming error.
func NewServer(d Deps) http.Handler {
	s := newServer(d)
	mux := http.NewServeMux()
	addRoutes(mux, s)
	var h http.Handler = onlyCleanPaths(mux)
	h = s.recoverPanics(h)
	h = s.rateLimit(h)
	h = s.logRequests(h)
	h = commonHeaders(h)
	return h
}

func newServer(d Deps) *server {
	if d.Service == nil {
		panic("httpapi: Deps.Service is nil")
	}
	s := &server{Deps: d, log: d.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.throttle = &throttle{log: s.log}
	if s.CheckTimeout <= 0 {
		s.CheckTimeout = DefaultCheckTimeout
	}
	if s.RateLimit > 0 {
		s.limiter = newLimiter(s.RateLimit, max(s.RateBurst, 1), maxRateClients, time.Now)
	}
	s.info = StoreInfoOf(d.Service.Store())
	s.storageType = StorageType(s.info)
	return s
}

// StoreInfoOf describes st: its own Info when it is a
// tokenledger.Describer, otherwise a local store of unknown kind.
func StoreInfoOf(st tokenledger.Store) tokenledger.StoreInfo {
	if d, ok := tokenledger.FindStore[tokenledger.Describer](st); ok {
		return d.Info()
	}
	return tokenledger.StoreInfo{Kind: "unknown"}
}

// StorageType is the contract's storageType for a store: "database" for a
// shared database, "file-system" for local storage.
func StorageType(info tokenledger.StoreInfo) string {
	if info.Database {
		return "database"
	}
	return "file-system"
}

// environmentJSON is the "environment" member of every 200 GET answer.
type environmentJSON struct {
	IsVercel    bool   `json:"isVercel"`
	StorageType string `json:"storageType"`
}

func (s *server) environment() environmentJSON {
	return environmentJSON{IsVercel: s.Environment.IsVercel, StorageType: s.storageType}
}

// timestamp formats the Service's now as RFC 3339 in UTC with
// milliseconds, the way JavaScript's toISOString does.
func (s *server) timestamp() string {
	return s.Service.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
