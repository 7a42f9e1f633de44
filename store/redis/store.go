// Package redis is the tokenledger.Store on a Redis database, over either
// of two transports: the Redis protocol through go-redis (kind "redis": a
// single server or a Redis Cluster, package resp) or the Vercel KV /
// Upstash REST API (kind "kv-rest", package kvrest). This package owns
// everything the two share: the key layout, the Lua script (add.lua), how
// calls are built, merged, sent and their replies read, reset, check and
// the markers; a transport only sends pipelines. One database therefore
// reads the same through either. docs/redis.md describes it all.
package redis

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
	"github.com/tokenledger/tokenledger/store/redis/kvrest"
	"github.com/tokenledger/tokenledger/store/redis/resp"
)

var (
	_ tokenledger.Store     = (*Store)(nil)
	_ tokenledger.Describer = (*Store)(nil)
)

// ReplyError is a Redis error reply to one command.
type ReplyError = wire.ReplyError

// MaxDaysPerRead bounds the days one Days call may span.
const MaxDaysPerRead = tokenledger.MaxRetentionDays + 2

// link states
const (
	stateUnknown int32 = iota
	stateUp
	stateDown
)

// Store is a tokenledger.Store on Redis, through either transport. It is
// safe for concurrent use by many goroutines, processes and machines.
type Store struct {
	pipe      wire.Pipeline // plain commands: the combiner, or the transport
	comb      *combiner     // nil when calls are not combined
	nodes     wire.Nodes    // every master of a cluster; nil for one endpoint
	keys      Keys
	retention int
	now       tokenledger.Clock
	server    string                  // names the database in errors
	tokens    bool                    // config.ClaimTokens
	lastDay   atomic.Pointer[dayKeys] // see dayKeysOf
	v6Days    sync.Map                // day number → struct{}: see markV6
	cache     *dayCache               // nil with config.NoReadCache

	info   tokenledger.StoreInfo
	log    *slog.Logger
	via    []any          // log attributes that name the transport
	resp   *resp.Client   // kind redis
	rest   *kvrest.Client // kind kv-rest
	closed atomic.Bool
	state  atomic.Int32
	once   sync.Once
	cerr   error
}

// config is what every Store is built from; the kinds' constructors
// (kinds.go) fill it in.
type config struct {
	// Pipeline sends the commands. Required.
	Pipeline wire.Pipeline
	// Nodes reaches every master of a cluster; nil for one endpoint.
	Nodes wire.Nodes
	// Combine sends concurrent calls together through Pipeline, which must
	// then be a wire.Sender; Merge also merges their add calls of one day.
	Combine, Merge bool
	Prefix         string
	RetentionDays  int
	Now            tokenledger.Clock
	// Server names the database in every error, without credentials.
	// Required.
	Server string
	// ClaimTokens gives every script call a claim token of its own, for a
	// transport that sends a request again when its reply was lost
	// (docs/redis.md, "Claim tokens").
	ClaimTokens bool
	// NoReadCache reads every day whole, for benchmarks.
	NoReadCache bool
	Logger      *slog.Logger
}

// newStore returns a Store, or an error in one sentence when cfg breaks a
// rule.
func newStore(cfg config) (*Store, error) {
	if cfg.Pipeline == nil {
		return nil, errors.New("redis store: a transport is required")
	}
	if cfg.Server == "" {
		return nil, errors.New("redis store: a server description is required")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	keys, err := NewKeys(prefix)
	if err != nil {
		return nil, err
	}
	r := cfg.RetentionDays
	if r == 0 {
		r = tokenledger.DefaultRetentionDays
	}
	if r < 1 || r > tokenledger.MaxRetentionDays {
		return nil, fmt.Errorf("retention must be 1 to %d days, not %d", tokenledger.MaxRetentionDays, r)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Store{pipe: cfg.Pipeline, nodes: cfg.Nodes, keys: keys, retention: r, now: now, server: cfg.Server, tokens: cfg.ClaimTokens, log: log}
	if !cfg.NoReadCache {
		c.cache = &dayCache{}
	}
	if s, ok := cfg.Pipeline.(wire.Sender); ok && cfg.Combine {
		c.comb = newCombiner(s, cfg.Merge)
		c.pipe = c.comb
	}
	return c, nil
}

// Keys returns the key layout.
func (c *Store) Keys() Keys { return c.keys }

// Prefix returns the key prefix in use.
func (c *Store) Prefix() string { return c.keys.Prefix() }

// RetentionDays returns R.
func (c *Store) RetentionDays() int { return c.retention }

// Server returns the server description used in errors.
func (c *Store) Server() string { return c.server }

// ExpireAt returns when the keys of day d expire: the start of day D + R + 1.
func (c *Store) ExpireAt(d tokenledger.Date) time.Time {
	return d.Time().AddDate(0, 0, c.retention+1)
}

// Info describes the store: its kind, a database, whether a cluster, and
// where (host:port, a cluster's seed list, or the REST API's host),
// without credentials.
func (c *Store) Info() tokenledger.StoreInfo { return c.info }

// ReadOnly reports whether the store holds only a read-only token
// (kv-rest), and so refuses every write.
func (c *Store) ReadOnly() bool { return c.rest != nil && c.rest.ReadOnly() }

// Close stops the combiner and closes the connections. Nothing is
// buffered: every acknowledged event is already in the database. After
// Close every method returns tokenledger.ErrClosed. Close is idempotent.
func (c *Store) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		if c.comb != nil {
			c.comb.close()
		}
		switch {
		case c.resp != nil:
			if err := c.resp.Close(); err != nil {
				c.cerr = fmt.Errorf("%s: close: %w", c.server, err)
			}
		case c.rest != nil:
			c.rest.CloseIdleConnections()
		}
	})
	return c.cerr
}
