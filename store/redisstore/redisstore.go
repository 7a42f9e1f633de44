// Package redisstore is the tokenledger.Store on Redis (a single server or
// a Redis Cluster) through go-redis. The key layout, the Lua script and the
// store logic live in internal/redismodel, shared with the Upstash REST
// store, so that one database reads the same through either; this package
// supplies the Redis-protocol transport, connection handling and logging.
//
// Every event is one round trip (one pipelined EVALSHA per UTC day of a
// batch); reading any number of days is one pipelined round trip (one per
// node on a cluster). See docs/redis.md.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	redismodel "github.com/tokenledger/tokenledger/store/redis"
)

var (
	_ tokenledger.Store     = (*Store)(nil)
	_ tokenledger.Describer = (*Store)(nil)
	_ redismodel.Doer       = (*doer)(nil)
	_ redismodel.Doer       = (*combiner)(nil)
	_ redismodel.Nodes      = (*clusterDoer)(nil)
)

// ConnectedMessage is logged when the store first reaches Redis, and again
// whenever it reaches Redis after having failed to.
const ConnectedMessage = "✅ Redis client connected for token usage"

// UnavailableMessage is logged once when Redis stops answering (and not
// again until it has answered).
const UnavailableMessage = "❌ Redis unavailable for token usage"

// link states
const (
	stateUnknown int32 = iota
	stateUp
	stateDown
)

// Store is a tokenledger.Store on Redis. It is safe for concurrent use by
// many goroutines, processes and machines.
type Store struct {
	core   *redismodel.Core
	client *client
	comb   *combiner
	log    *slog.Logger
	closed atomic.Bool
	state  atomic.Int32
	once   sync.Once
	cerr   error
}

// routeLogs sends go-redis's own log lines (pool dial failures and the
// like, which this package already reports as errors and as
// UnavailableMessage) to slog.Default() at debug level instead of stderr.
// go-redis has one logger per process, so this is done once.
var routeLogs sync.Once

// slogPrinter adapts slog to go-redis's logger interface.
type slogPrinter struct{}

func (slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// New validates opts and returns a Store without touching the network: the
// first call connects (and logs ConnectedMessage when it succeeds). Bad
// options are an error in one sentence that never repeats a password.
//
// The first New also routes go-redis's process-wide log output to
// slog.Default() at debug level.
func New(opts Options) (*Store, error) {
	routeLogs.Do(func() { redis.SetLogger(slogPrinter{}) })
	cl, err := opts.newClient()
	if err != nil {
		return nil, err
	}
	server := "redis " + cl.location
	comb := newCombiner(&doer{c: cl.c, timeout: cl.read, wait: cl.wait})
	var d redismodel.Doer = comb
	if !combine {
		d = &doer{c: cl.c, timeout: cl.read, wait: cl.wait}
	}
	if cl.cluster != nil {
		server = "redis cluster " + cl.location
		d = &clusterDoer{Doer: d, cc: cl.cluster}
	}
	core, err := redismodel.New(redismodel.Config{
		Doer: d, Prefix: opts.KeyPrefix, RetentionDays: opts.RetentionDays, Now: opts.Now, Server: server,
		NoReadCache: !readCache,
	})
	if err != nil {
		comb.close()
		_ = cl.c.Close()
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Store{core: core, client: cl, comb: comb, log: log}, nil
}

// Open is New followed by a connection check: it loads the Lua script on
// every master (which proves the server answers and runs scripts) and logs
// ConnectedMessage, and, with WaitReplicas, FewReplicasMessage for each
// master that lacks replicas. When Redis cannot be reached it closes what it opened
// and returns an error wrapping tokenledger.ErrUnavailable that names the
// server (or the context's error when ctx ended).
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := s.track(s.core.LoadScript(ctx)); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.warnFewReplicas(ctx)
	return s, nil
}

// track logs the link's state changes: ConnectedMessage after the first
// success (and after a success that follows a failure), UnavailableMessage
// after the first failure to reach Redis. It returns err unchanged.
func (s *Store) track(err error) error {
	switch {
	case err == nil:
		if s.state.Swap(stateUp) != stateUp {
			s.log.Info(ConnectedMessage, "server", s.client.location, "prefix", s.core.Keys().Prefix())
		}
	case errors.Is(err, tokenledger.ErrUnavailable):
		if s.state.Swap(stateDown) != stateDown {
			s.log.Warn(UnavailableMessage, "server", s.client.location, "err", err)
		}
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

// Add counts each event whose ID is new within its UTC day, in one round
// trip (see redismodel.Core.Add). On error it returns a wrapped
// tokenledger.ErrUnavailable naming the server when Redis could not be
// reached or did not answer within the timeouts, the context's error when
// ctx ended, a *tokenledger.ValidationError for an event that breaks the
// contract, or tokenledger.ErrClosed after Close. Retrying the same events
// after an error never counts one twice.
func (s *Store) Add(ctx context.Context, events []tokenledger.Event) (tokenledger.AddResult, error) {
	if s.closed.Load() {
		return tokenledger.AddResult{}, tokenledger.ErrClosed
	}
	res, err := s.core.Add(ctx, events)
	return res, s.closedErr(s.track(err))
}

// Days returns the days in [q.From, q.To] that hold usage, oldest first,
// read in one pipelined round trip (one per master on a cluster). Errors
// are as for Add, plus a wrapped error naming the key when stored data
// cannot be read.
func (s *Store) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if s.closed.Load() {
		return nil, tokenledger.ErrClosed
	}
	days, err := s.core.Days(ctx, q)
	return days, s.closedErr(s.track(err))
}

// Reset deletes every key under the store's prefix on every master with
// SCAN and UNLINK (never FLUSHDB or KEYS), leaving all other keys alone.
// Errors are as for Add.
func (s *Store) Reset(ctx context.Context) error {
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	return s.closedErr(s.track(s.core.Reset(ctx)))
}

// Check writes a probe key under the prefix with a 10 s expiry, reads it
// back and deletes it, in one round trip; it touches no usage data. Its
// error names the server and what failed.
func (s *Store) Check(ctx context.Context) error {
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	return s.closedErr(s.track(s.core.Check(ctx)))
}

// HasMark reports whether SetMark(name) was called within the last R + 1
// days; the migration uses it to remember files it could not rename.
// Errors are as for Check.
func (s *Store) HasMark(ctx context.Context, name string) (bool, error) {
	if s.closed.Load() {
		return false, tokenledger.ErrClosed
	}
	ok, err := s.core.HasMark(ctx, name)
	return ok, s.closedErr(s.track(err))
}

// LastReset returns when Reset last ran, by the database's clock, the
// zero time when it did not within the last R + 1 days (the fallback spool
// uses ResetTimes, which also reads the database's time now). Errors are as for Check.
func (s *Store) LastReset(ctx context.Context) (time.Time, error) {
	if s.closed.Load() {
		return time.Time{}, tokenledger.ErrClosed
	}
	t, err := s.core.LastReset(ctx)
	return t, s.closedErr(s.track(err))
}

// ResetTimes returns when Reset last ran and the time now, both by the
// database's clock (see fallback.ResetClock). Errors are as for Check.
func (s *Store) ResetTimes(ctx context.Context) (reset, now time.Time, err error) {
	if s.closed.Load() {
		return time.Time{}, time.Time{}, tokenledger.ErrClosed
	}
	reset, now, err = s.core.ResetTimes(ctx)
	return reset, now, s.closedErr(s.track(err))
}

// SetMark records name for R + 1 days. Errors are as for Check.
func (s *Store) SetMark(ctx context.Context, name string) error {
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	return s.closedErr(s.track(s.core.SetMark(ctx, name)))
}

// Close closes the connections. Nothing is buffered: every acknowledged
// event is already in Redis. After Close every method returns
// tokenledger.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.comb.close()
		if err := s.client.c.Close(); err != nil {
			s.cerr = fmt.Errorf("%s: close: %w", s.core.Server(), err)
		}
	})
	return s.cerr
}

// Info describes the store: Kind "redis", a database, located at the
// server's host:port (a comma-separated seed list for a cluster), without
// credentials.
func (s *Store) Info() tokenledger.StoreInfo {
	return tokenledger.StoreInfo{Kind: "redis", Database: true, Cluster: s.client.cluster != nil, Location: s.client.location}
}

// Prefix returns the key prefix in use.
func (s *Store) Prefix() string { return s.core.Keys().Prefix() }
