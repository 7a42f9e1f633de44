// Package kvrest is the tokenledger.Store on Vercel KV / Upstash Redis
// through its REST API (KV_REST_API_URL and KV_REST_API_TOKEN, or
// UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN), for places where a
// Redis-protocol connection is not possible, such as Vercel functions.
//
// The key layout, the Lua script and the store logic are internal/redismodel,
// shared with store/redisstore: one database reads the same through either
// protocol. This package supplies the transport (Client, a
// redismodel.Doer over HTTPS), and the logging and error classification.
//
// Round trips: logging one event is one HTTP request (EVALSHA of the add
// script, POSTed to the base URL); a batch is one request (one script call
// per UTC day, more than one day going to /pipeline); reading any number of
// days is one /pipeline request.
//
// Failures: every error names the REST API's host and says what happened;
// none ever holds the token. An unreachable API, a 5xx answer, a timeout,
// a rejected token (401, see ErrTokenRejected) and a reached plan limit
// (ErrQuotaExceeded) wrap tokenledger.ErrUnavailable: the store cannot
// serve, so the fallback spool keeps the events until the API is
// reachable with a valid token again. A command's own error (a 400, or an
// error inline in a /pipeline answer) is a plain error, as it is through
// redisstore, unless Redis says it cannot serve (LOADING, BUSY, OOM,
// NOPERM, …). A store configured with only a read-only token refuses writes
// with ErrReadOnly, which does not wrap ErrUnavailable: no retry can make
// them succeed.
package kvrest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenledger/tokenledger"
	redismodel "github.com/tokenledger/tokenledger/store/redis"
)

var (
	_ tokenledger.Store     = (*Store)(nil)
	_ tokenledger.Describer = (*Store)(nil)
)

// Kind is the store's StoreInfo.Kind.
const Kind = "kv-rest"

// ConnectedMessage is logged when the store first reaches the REST API,
// and again whenever it reaches it after having failed to. It is the same
// line the Redis-protocol store logs.
const ConnectedMessage = "✅ Redis client connected for token usage"

// UnavailableMessage is logged once when the REST API stops answering (and
// not again until it has answered).
const UnavailableMessage = "❌ Redis unavailable for token usage"

// Options configure a Store.
type Options struct {
	// URL is the REST API's base URL (KV_REST_API_URL or
	// UPSTASH_REDIS_REST_URL), e.g. https://example.upstash.io.
	URL string
	// Token is the database's standard REST token (KV_REST_API_TOKEN or
	// UPSTASH_REDIS_REST_TOKEN), used for every command.
	Token string
	// ReadOnlyToken is the read-only REST token
	// (KV_REST_API_READ_ONLY_TOKEN). It is used only when Token is empty;
	// the store then reads days and refuses every write with ErrReadOnly,
	// sending nothing. It is never used to write.
	ReadOnlyToken string
	// Prefix is the first part of every key (TOKENLEDGER_KEY_PREFIX);
	// "tokenledger" when empty. The same prefix reads the same data as
	// redisstore on the same database.
	Prefix string
	// RetentionDays is R: day D's keys expire at the start of day D + R + 1.
	// tokenledger.DefaultRetentionDays when 0.
	RetentionDays int
	// Timeout bounds each call, retries included; DefaultTimeout when 0.
	Timeout time.Duration
	// MaxAttempts is how many times a call is tried at most;
	// DefaultMaxAttempts when 0.
	MaxAttempts int
	// HTTPClient sends the requests; the store makes its own when nil.
	HTTPClient *http.Client
	// Logger receives the connection log lines; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock that decides which days have already expired;
	// time.Now when nil.
	Now tokenledger.Clock
}

// link states
const (
	stateUnknown int32 = iota
	stateUp
	stateDown
)

// Store is a tokenledger.Store on the Upstash / Vercel KV REST API. It is
// safe for concurrent use by many goroutines, processes and machines.
type Store struct {
	core   *redismodel.Core
	client *Client
	log    *slog.Logger
	closed atomic.Bool
	state  atomic.Int32
	once   sync.Once
}

// New validates opts (trimming white space around the URL and tokens) and
// returns a Store without touching the network. Bad options are an error
// in one sentence that never repeats a token.
func New(opts Options) (*Store, error) {
	token, readOnly := strings.TrimSpace(opts.Token), false
	if token == "" {
		token, readOnly = strings.TrimSpace(opts.ReadOnlyToken), true
	}
	cl, err := NewClient(ClientOptions{
		URL: opts.URL, Token: token, ReadOnly: readOnly,
		Timeout: opts.Timeout, MaxAttempts: opts.MaxAttempts, HTTPClient: opts.HTTPClient,
	})
	if err != nil {
		return nil, err
	}
	core, err := redismodel.New(redismodel.Config{
		Doer: cl, Prefix: strings.TrimSpace(opts.Prefix), RetentionDays: opts.RetentionDays,
		Now: opts.Now, Server: Kind + " " + cl.Host(),
		// The client sends a request again when its reply was lost: with a
		// claim token, the events the lost attempt counted are still
		// reported as counted by this call.
		ClaimTokens: true,
	})
	if err != nil {
		return nil, fmt.Errorf("kv rest store for %s: %w", cl.Host(), err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Store{core: core, client: cl, log: log}, nil
}

// Open is New followed by a check that the REST API answers and accepts
// the token: it loads the Lua script (SCRIPT LOAD), or, with only a
// read-only token, makes one read. Then it logs ConnectedMessage. When the
// API cannot be reached, or rejects the token, it returns an error
// wrapping tokenledger.ErrUnavailable that names the host (or the
// context's error when ctx ended).
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	u := s.client.base
	if strings.HasPrefix(u, "http://") && !isLoopback(s.client.Host()) {
		s.log.Warn("⚠️ The KV REST API URL is http://, so the token travels unencrypted; use https://", "server", s.client.Host())
	}
	if s.client.ReadOnly() {
		err = s.readProbe(ctx)
	} else {
		err = s.core.LoadScript(ctx)
	}
	if err := s.track(err); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// readProbe makes one read (EXISTS of the probe key), to prove that the
// API answers a read-only token.
func (s *Store) readProbe(ctx context.Context) error {
	const op = "check (read)"
	server := s.core.Server()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", server, op, err)
	}
	replies, err := s.client.Do(ctx, [][]any{{"EXISTS", s.core.Keys().Probe("read")}})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%s: %s: %w", server, op, cerr)
		}
		return fmt.Errorf("%s: %s: %w: %w", server, op, tokenledger.ErrUnavailable, err)
	}
	if e, ok := replies[0].(redismodel.ReplyError); ok {
		if e.Unavailable() {
			return fmt.Errorf("%s: %s: %w: %w", server, op, tokenledger.ErrUnavailable, e)
		}
		return fmt.Errorf("%s: %s: %w", server, op, e)
	}
	return nil
}

func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// track logs the link's state changes: ConnectedMessage after the first
// success (and after a success that follows a failure), UnavailableMessage
// after the first failure to reach the API. It returns err, with a hint
// added when the server refused a command for lack of permission.
func (s *Store) track(err error) error {
	switch {
	case err == nil:
		if s.state.Swap(stateUp) != stateUp {
			s.log.Info(ConnectedMessage, "server", s.client.Host(), "via", "REST API", "prefix", s.core.Keys().Prefix())
		}
	case errors.Is(err, tokenledger.ErrUnavailable):
		if s.state.Swap(stateDown) != stateDown {
			s.log.Warn(UnavailableMessage, "server", s.client.Host(), "via", "REST API", "err", err)
		}
	}
	var re redismodel.ReplyError
	if err != nil && errors.As(err, &re) && re.Code() == "NOPERM" {
		return fmt.Errorf("%w (the token may not run this command: is it the read-only token? Writes need the standard REST token)", err)
	}
	return err
}

// closedErr turns the error of a call that raced with Close into ErrClosed.
func (s *Store) closedErr(err error) error {
	if err != nil && s.closed.Load() {
		return fmt.Errorf("%s: %w", s.core.Server(), tokenledger.ErrClosed)
	}
	return err
}

// readOnlyErr is the error of a write on a store with only a read-only token.
func (s *Store) readOnlyErr(op string) error {
	return fmt.Errorf("%s: %s: %w", s.core.Server(), op, ErrReadOnly)
}

// Add counts each event whose ID is new within its UTC day, in one HTTP
// request (see redismodel.Core.Add). On error it returns a wrapped
// tokenledger.ErrUnavailable naming the host when the API could not be
// reached, did not answer in time, answered 5xx or rejected the token;
// the context's error when ctx ended; a *tokenledger.ValidationError for
// an event that breaks the contract; ErrReadOnly with only a read-only
// token; or tokenledger.ErrClosed after Close. Retrying the same events
// after an error never counts one twice. When a reply was lost and the
// client sent the request again, an event the lost attempt counted is
// reported as new all the same: each of its script calls carries a claim
// token of its own (redismodel.Config.ClaimTokens) that tells its claims from
// earlier ones.
func (s *Store) Add(ctx context.Context, events []tokenledger.Event) (tokenledger.AddResult, error) {
	if s.closed.Load() {
		return tokenledger.AddResult{}, tokenledger.ErrClosed
	}
	if s.client.ReadOnly() {
		return tokenledger.AddResult{}, s.readOnlyErr(fmt.Sprintf("add %d events", len(events)))
	}
	// One deadline for the whole Add: after a NOSCRIPT the core sends the
	// affected calls again as EVAL, a second request that must not get a
	// timeout of its own.
	cctx, cancel := context.WithTimeoutCause(ctx, s.client.timeout, errCallTimeout)
	defer cancel()
	res, err := s.core.Add(cctx, events)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(cctx), errCallTimeout) && !errors.Is(err, tokenledger.ErrUnavailable) {
		// The timeout ran out between the two requests: the database did
		// not answer in time, like any other timeout.
		err = fmt.Errorf("%w: no answer within the %s timeout: %w", tokenledger.ErrUnavailable, s.client.timeout, err)
	}
	return res, s.closedErr(s.track(err))
}

// Days returns the days in [q.From, q.To] that hold usage, oldest first,
// read in one /pipeline request. Errors are as for Add, plus a wrapped
// error naming the key when stored data cannot be read.
func (s *Store) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if s.closed.Load() {
		return nil, tokenledger.ErrClosed
	}
	days, err := s.core.Days(ctx, q)
	return days, s.closedErr(s.track(err))
}

// Reset deletes every key under the store's prefix with SCAN and UNLINK
// (never FLUSHDB or KEYS), leaving all other keys alone. Errors are as for
// Add.
func (s *Store) Reset(ctx context.Context) error {
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	if s.client.ReadOnly() {
		return s.readOnlyErr("reset")
	}
	return s.closedErr(s.track(s.core.Reset(ctx)))
}

// Check writes a probe key under the prefix with a 10 s expiry, reads it
// back and deletes it, in one request; it touches no usage data. With only
// a read-only token it makes one read and, when that works, returns an
// error wrapping ErrReadOnly: the store cannot write. Its error names the
// host and what failed.
func (s *Store) Check(ctx context.Context) error {
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	if s.client.ReadOnly() {
		if err := s.closedErr(s.track(s.readProbe(ctx))); err != nil {
			return err
		}
		return fmt.Errorf("%s: check: reads work, but %w", s.core.Server(), ErrReadOnly)
	}
	return s.closedErr(s.track(s.core.Check(ctx)))
}

// HasMark reports whether SetMark(name) was called within the last R + 1
// days; the migration uses it to remember files it could not rename.
// Errors are as for Days.
func (s *Store) HasMark(ctx context.Context, name string) (bool, error) {
	if s.closed.Load() {
		return false, tokenledger.ErrClosed
	}
	ok, err := s.core.HasMark(ctx, name)
	return ok, s.closedErr(s.track(err))
}

// LastReset returns when Reset last ran, by the database's clock, the
// zero time when it did not within the last R + 1 days (the fallback spool
// uses ResetTimes, which also reads the database's time now). Errors are as for Days.
func (s *Store) LastReset(ctx context.Context) (time.Time, error) {
	if s.closed.Load() {
		return time.Time{}, tokenledger.ErrClosed
	}
	t, err := s.core.LastReset(ctx)
	return t, s.closedErr(s.track(err))
}

// ResetTimes returns when Reset last ran and the time now, both by the
// database's clock (see fallback.ResetClock). Errors are as for Days.
func (s *Store) ResetTimes(ctx context.Context) (reset, now time.Time, err error) {
	if s.closed.Load() {
		return time.Time{}, time.Time{}, tokenledger.ErrClosed
	}
	reset, now, err = s.core.ResetTimes(ctx)
	return reset, now, s.closedErr(s.track(err))
}

// SetMark records name for R + 1 days. Errors are as for Add.
func (s *Store) SetMark(ctx context.Context, name string) error {
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	if s.client.ReadOnly() {
		return s.readOnlyErr("write marker")
	}
	return s.closedErr(s.track(s.core.SetMark(ctx, name)))
}

// Close releases the idle connections. Nothing is buffered: every
// acknowledged event is already in the database. After Close every method
// returns tokenledger.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.client.CloseIdleConnections()
	})
	return nil
}

// Info describes the store: Kind "kv-rest", a database, located at the
// REST API's host, without any credential.
func (s *Store) Info() tokenledger.StoreInfo {
	return tokenledger.StoreInfo{Kind: Kind, Database: true, Location: s.client.Host()}
}

// Prefix returns the key prefix in use.
func (s *Store) Prefix() string { return s.core.Keys().Prefix() }

// ReadOnly reports whether the store holds only a read-only token.
func (s *Store) ReadOnly() bool { return s.client.ReadOnly() }
