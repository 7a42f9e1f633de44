package redis

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
	"github.com/tokenledger/tokenledger/store/redis/kvrest"
	"github.com/tokenledger/tokenledger/store/redis/resp"
)

// The kinds of Redis store, by transport: the name in StoreInfo.Kind, in
// GET /api/test and in the docs.
const (
	// KindRedis is the Redis protocol through go-redis (package resp).
	KindRedis = "redis"
	// KindKVRest is the Vercel KV / Upstash REST API (package kvrest).
	KindKVRest = "kv-rest"
)

// DefaultTimeout is the default dial, read and write timeout of kind
// redis: a hung Redis makes a call fail after about this long.
const DefaultTimeout = resp.DefaultTimeout

// FewReplicasMessage is logged at OpenRedis for each master with fewer
// connected replicas than WaitReplicas: every write to it will go to the
// spool until they connect.
const FewReplicasMessage = "⚠️ Redis master has fewer replicas than each write waits for; writes to it go to the local spool until they connect"

// combine, merge and readCache are false only in benchmarks that compare
// the store without the combiner, without the merging of add calls, or
// without the cache of read days (export_test.go).
var combine, merge, readCache = true, true, true

// RedisOptions configure a store of kind redis. Exactly one of URL and
// ClusterNodes is set.
type RedisOptions struct {
	// URL is a single server's redis:// or rediss:// (TLS) URL, e.g.
	// REDIS_URL or KV_URL: redis://[user:password@]host[:port][/db].
	URL string
	// ClusterNodes are the seed nodes of a Redis Cluster
	// (REDIS_CLUSTER_NODES), each "host:port" or a redis:// or rediss://
	// URL. URLs that carry credentials must all carry the same ones.
	ClusterNodes []string
	// KeyPrefix is the first part of every key (TOKENLEDGER_KEY_PREFIX);
	// "tokenledger" when empty.
	KeyPrefix string
	// RetentionDays is R: day D's keys expire at the start of day D + R + 1.
	// tokenledger.DefaultRetentionDays when 0.
	RetentionDays int
	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt, socket read and socket write; DefaultTimeout when 0.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the number of connections per server; go-redis's default
	// (10 per CPU) when 0.
	PoolSize int
	// WaitReplicas, when above 0, makes every write of events wait until
	// that many replicas of its master have it (WAIT), for at most
	// WaitTimeout; a write they do not all acknowledge in time fails as
	// unavailable, for the fallback spool to take
	// (TOKENLEDGER_REDIS_WAIT_REPLICAS; docs/redis.md, "Failover and WAIT").
	WaitReplicas int
	// WaitTimeout is a whole number of milliseconds below the read
	// timeout; half the read timeout when 0. Set only with WaitReplicas.
	WaitTimeout time.Duration
	// Logger receives the connection log lines; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock that decides which days have already expired;
	// time.Now when nil.
	Now tokenledger.Clock
	// Dialer, when set, opens the network connections instead of go-redis's
	// own dialer (tests use it to count round trips).
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewRedis validates opts and returns a store of kind redis without
// touching the network: the first call connects. Bad options are an error
// in one sentence that never repeats a password.
func NewRedis(opts RedisOptions) (*Store, error) {
	cl, err := resp.New(resp.Options{
		URL: opts.URL, ClusterNodes: opts.ClusterNodes,
		DialTimeout: opts.DialTimeout, ReadTimeout: opts.ReadTimeout, WriteTimeout: opts.WriteTimeout,
		PoolSize: opts.PoolSize, WaitReplicas: opts.WaitReplicas, WaitTimeout: opts.WaitTimeout, Dialer: opts.Dialer,
	})
	if err != nil {
		return nil, err
	}
	server := "redis " + cl.Location()
	var nodes wire.Nodes
	if cl.Cluster() {
		server, nodes = "redis cluster "+cl.Location(), cl
	}
	c, err := newStore(config{
		Pipeline: cl, Nodes: nodes, Combine: combine, Merge: merge,
		Prefix: opts.KeyPrefix, RetentionDays: opts.RetentionDays, Now: opts.Now, Server: server,
		NoReadCache: !readCache, Logger: opts.Logger,
	})
	if err != nil {
		_ = cl.Close()
		return nil, err
	}
	c.resp = cl
	c.info = tokenledger.StoreInfo{Kind: KindRedis, Database: true, Cluster: cl.Cluster(), Location: cl.Location()}
	return c, nil
}

// OpenRedis is NewRedis followed by a connection check: it loads the Lua
// script on every master and logs ConnectedMessage, and, with
// WaitReplicas, FewReplicasMessage for each master that lacks replicas.
// When Redis cannot be reached it closes what it opened and returns an
// error wrapping tokenledger.ErrUnavailable that names the server (or the
// context's error when ctx ended).
func OpenRedis(ctx context.Context, opts RedisOptions) (*Store, error) {
	c, err := NewRedis(opts)
	if err != nil {
		return nil, err
	}
	if err := c.track(c.loadScript(ctx)); err != nil {
		_ = c.Close()
		return nil, err
	}
	c.warnFewReplicas(ctx)
	return c, nil
}

// warnFewReplicas logs FewReplicasMessage for each master that has fewer
// replicas connected now than writes wait for. It only informs: a replica
// may be on its way.
func (c *Store) warnFewReplicas(ctx context.Context) {
	want := c.resp.WaitReplicas()
	err := c.resp.FewReplicas(ctx, func(master string, got int64) {
		c.log.Warn(FewReplicasMessage, "master", master, "replicas", got, "wait_replicas", want)
	})
	if err != nil {
		c.log.Warn("could not count the Redis replicas each write waits for", "err", err)
	}
}

// KVRestOptions configure a store of kind kv-rest.
type KVRestOptions struct {
	// URL is the REST API's base URL (KV_REST_API_URL or
	// UPSTASH_REDIS_REST_URL), e.g. https://example.upstash.io.
	URL string
	// Token is the database's standard REST token (KV_REST_API_TOKEN or
	// UPSTASH_REDIS_REST_TOKEN), used for every command.
	Token string
	// ReadOnlyToken is the read-only REST token
	// (KV_REST_API_READ_ONLY_TOKEN). It is used only when Token is empty;
	// the store then reads days and refuses every write with
	// kvrest.ErrReadOnly, sending nothing.
	ReadOnlyToken string
	// Prefix is the first part of every key (TOKENLEDGER_KEY_PREFIX);
	// "tokenledger" when empty. The same prefix reads the same data as
	// kind redis on the same database.
	Prefix string
	// RetentionDays is R: day D's keys expire at the start of day D + R + 1.
	// tokenledger.DefaultRetentionDays when 0.
	RetentionDays int
	// Timeout bounds each call, retries included; kvrest.DefaultTimeout
	// when 0.
	Timeout time.Duration
	// MaxAttempts is how many times a call is tried at most;
	// kvrest.DefaultMaxAttempts when 0.
	MaxAttempts int
	// HTTPClient sends the requests; the store makes its own when nil.
	HTTPClient *http.Client
	// Logger receives the connection log lines; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock that decides which days have already expired;
	// time.Now when nil.
	Now tokenledger.Clock
}

// NewKVRest validates opts (trimming white space around the URL and
// tokens) and returns a store of kind kv-rest without touching the
// network. Bad options are an error in one sentence that never repeats a
// token.
func NewKVRest(opts KVRestOptions) (*Store, error) {
	token, readOnly := strings.TrimSpace(opts.Token), false
	if token == "" {
		token, readOnly = strings.TrimSpace(opts.ReadOnlyToken), true
	}
	cl, err := kvrest.NewClient(kvrest.ClientOptions{
		URL: opts.URL, Token: token, ReadOnly: readOnly,
		Timeout: opts.Timeout, MaxAttempts: opts.MaxAttempts, HTTPClient: opts.HTTPClient,
	})
	if err != nil {
		return nil, err
	}
	c, err := newStore(config{
		Pipeline: cl, Prefix: strings.TrimSpace(opts.Prefix), RetentionDays: opts.RetentionDays,
		Now: opts.Now, Server: KindKVRest + " " + cl.Host(), Logger: opts.Logger,
		// The client sends a request again when its reply was lost: with a
		// claim token, the events the lost attempt counted are still
		// reported as counted by this call.
		ClaimTokens: true,
	})
	if err != nil {
		return nil, fmt.Errorf("kv rest store for %s: %w", cl.Host(), err)
	}
	c.rest, c.via = cl, []any{"via", "REST API"}
	c.info = tokenledger.StoreInfo{Kind: KindKVRest, Database: true, Location: cl.Host()}
	return c, nil
}

// OpenKVRest is NewKVRest followed by a check that the REST API answers
// and accepts the token: it loads the Lua script, or, with only a
// read-only token, makes one read. Then it logs ConnectedMessage. When the
// API cannot be reached, or rejects the token, it returns an error
// wrapping tokenledger.ErrUnavailable that names the host (or the
// context's error when ctx ended).
func OpenKVRest(ctx context.Context, opts KVRestOptions) (*Store, error) {
	c, err := NewKVRest(opts)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(c.rest.URL(), "http://") && !isLoopback(c.rest.Host()) {
		c.log.Warn("⚠️ The KV REST API URL is http://, so the token travels unencrypted; use https://", "server", c.rest.Host())
	}
	if c.rest.ReadOnly() {
		err = c.readProbe(ctx)
	} else {
		err = c.loadScript(ctx)
	}
	if err := c.track(err); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// readProbe makes one read (EXISTS of the probe key), to prove that the
// REST API answers a read-only token.
func (c *Store) readProbe(ctx context.Context) error {
	replies, err := c.do(ctx, "check (read)", [][]any{{"EXISTS", c.keys.Probe("read")}})
	if err != nil {
		return err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return c.replyFail("check (read)", e)
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
