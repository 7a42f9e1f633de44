// Package kvresttest runs an Upstash-compatible REST front (the protocol of
// Vercel KV and Upstash Redis) over a real redis-server, on loopback only,
// for the tests of the kv-rest store. It is as strict as the real service,
// and can inject faults; docs/redis.md, "The test front", lists its rules.
package kvresttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultMaxRequestBytes is Upstash's request size limit on the Free and
// Pay-as-you-go plans.
const DefaultMaxRequestBytes = 1 << 20

// DefaultDelay is how long a Delay fault waits when its Delay is zero.
const DefaultDelay = 3 * time.Second

// readOnlyUser is the Redis ACL user behind the read-only token.
const readOnlyUser = "kvresttest_ro"

// Options configure a Server.
type Options struct {
	// Token is the standard token; a random one when empty.
	Token string
	// ReadOnlyToken is the read-only token; a random one when empty.
	ReadOnlyToken string
	// MaxRequestBytes bounds a request body; DefaultMaxRequestBytes when 0.
	MaxRequestBytes int64
	// PoolSize is the number of Redis connections; 128 when 0.
	PoolSize int
}

// Stats count what the front saw since it started (or since ResetStats).
type Stats struct {
	// Requests is every HTTP request received, whatever became of it.
	Requests int64
	// Single and Pipeline are the authorized, well-formed requests to "/"
	// and "/pipeline".
	Single, Pipeline int64
	// Commands is the number of commands sent to Redis.
	Commands int64
	// Unauthorized is the requests answered 401.
	Unauthorized int64
	// Invalid is the requests refused with 400, 404 or 405 before any
	// command ran (bad content type, body, method or path).
	Invalid int64
	// Faults counts the injected faults by kind.
	Faults map[FaultKind]int64
}

// Server is a running REST front. Its methods are safe for concurrent use.
type Server struct {
	hs       *httptest.Server
	rdb      *redis.Client
	ro       *redis.Client
	token    string
	roToken  string
	maxBytes int64

	mu     sync.Mutex
	queue  []Fault
	random RandomFaults
	rng    *mrand.Rand

	requests, single, pipeline, commands, unauthorized, invalid atomic.Int64
	faults                                                      [len(kindNames)]atomic.Int64
}

// Start starts a front over the redis-server at redisAddr ("host:port")
// and stops it when t ends.
func Start(t testing.TB, redisAddr string, o Options) *Server {
	t.Helper()
	s, err := New(redisAddr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a front over the redis-server at redisAddr. Close stops it.
func New(redisAddr string, o Options) (*Server, error) {
	s := &Server{token: o.Token, roToken: o.ReadOnlyToken, maxBytes: o.MaxRequestBytes}
	if s.token == "" {
		s.token = randomToken()
	}
	if s.roToken == "" {
		s.roToken = randomToken()
	}
	if s.token == s.roToken {
		return nil, errors.New("kvresttest: the token and the read-only token must differ")
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxRequestBytes
	}
	pool := o.PoolSize
	if pool == 0 {
		pool = 128
	}
	ropts := func() *redis.Options {
		return &redis.Options{
			Addr: redisAddr, Protocol: 2, PoolSize: pool, MaxRetries: -1,
			DialTimeout: time.Second, DialerRetries: 1,
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}
	}
	s.rdb = redis.NewClient(ropts())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The read-only user, as Upstash's default_ro: reads only, no SCAN or
	// KEYS. ">" adds a password, so fronts sharing a server coexist.
	roPass := randomToken()
	if err := s.rdb.Do(ctx, "ACL", "SETUSER", readOnlyUser, "on", ">"+roPass, "~*", "-@all", "+@read", "-@dangerous", "-scan").Err(); err != nil {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("kvresttest: create the read-only ACL user on %s: %w", redisAddr, err)
	}
	ro := ropts()
	ro.Username, ro.Password = readOnlyUser, roPass
	s.ro = redis.NewClient(ro)
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.hs.Start() // httptest listens on 127.0.0.1 only
	return s, nil
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "AX" + hex.EncodeToString(b[:])
}

// URL returns the base URL, "http://127.0.0.1:<port>".
func (s *Server) URL() string { return s.hs.URL }

// Host returns "127.0.0.1:<port>".
func (s *Server) Host() string { return strings.TrimPrefix(s.hs.URL, "http://") }

// Token returns the standard token.
func (s *Server) Token() string { return s.token }

// ReadOnlyToken returns the read-only token.
func (s *Server) ReadOnlyToken() string { return s.roToken }

// Close stops the front (waiting for requests in flight) and its Redis
// connections. It does not stop the redis-server.
func (s *Server) Close() {
	s.hs.CloseClientConnections()
	s.hs.Close()
	_ = s.rdb.Close()
	_ = s.ro.Close()
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests: s.requests.Load(), Single: s.single.Load(), Pipeline: s.pipeline.Load(),
		Commands: s.commands.Load(), Unauthorized: s.unauthorized.Load(), Invalid: s.invalid.Load(),
		Faults: map[FaultKind]int64{},
	}
	for k := range s.faults {
		if n := s.faults[k].Load(); n > 0 && k != int(None) {
			st.Faults[FaultKind(k)] = n
		}
	}
	return st
}

// ResetStats sets every count to zero.
func (s *Server) ResetStats() {
	for _, c := range []*atomic.Int64{&s.requests, &s.single, &s.pipeline, &s.commands, &s.unauthorized, &s.invalid} {
		c.Store(0)
	}
	for k := range s.faults {
		s.faults[k].Store(0)
	}
}
