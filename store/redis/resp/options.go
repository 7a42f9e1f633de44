package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/tokenledger/tokenledger/store/redis/redisurl"
)

// DefaultTimeout is the default dial, read and write timeout: a hung Redis
// makes a call fail after about this long instead of hanging it.
const DefaultTimeout = 2 * time.Second

// Options configure a Client. Exactly one of URL and ClusterNodes is set.
type Options struct {
	// URL is a single server's redis:// or rediss:// (TLS) URL:
	// redis://[user:password@]host[:port][/db].
	URL string
	// ClusterNodes are the seed nodes of a Redis Cluster, each "host:port"
	// or a redis:// or rediss:// URL. URLs that carry credentials must all
	// carry the same ones.
	ClusterNodes []string
	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt, socket read and socket write; DefaultTimeout when 0.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the number of connections per server; go-redis's default
	// (10 per CPU) when 0.
	PoolSize int
	// WaitReplicas, when above 0, makes every pipeline that holds a write
	// marked for it end with WAIT for that many replicas, for at most
	// WaitTimeout; those writes fail when fewer acknowledge in time
	// (docs/redis.md, "Failover and WAIT").
	WaitReplicas int
	// WaitTimeout is a whole number of milliseconds below the read
	// timeout; half the read timeout when 0. Set only with WaitReplicas.
	WaitTimeout time.Duration
	// Dialer, when set, opens the network connections instead of go-redis's
	// own dialer (tests use it to count round trips).
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// target is a parsed server address with its credentials and TLS setting.
type target struct {
	addr           string
	username, pass string
	tls            bool
	db             int
	urlOpts        *redis.Options // set for a URL
	url            *url.URL       // set for a URL: as parsed, for its query
}

// parseURL parses a redis:// or rediss:// URL. Its errors never repeat the
// URL's user info, which may hold a password: a URL whose user info
// url.Parse would cut short is refused first, so what go-redis's messages
// quote (the path, an option) cannot hold any of it.
func parseURL(what, raw string) (target, error) {
	if err := redisurl.CheckUserInfo(what, raw); err != nil {
		return target{}, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return target{}, fmt.Errorf("%s is not a valid URL: %v", what, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return target{}, fmt.Errorf("%s must start with redis:// or rediss://, not %q", what, u.Scheme+"://")
	}
	if u.Hostname() == "" {
		return target{}, fmt.Errorf("%s has no host", what)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return target{}, fmt.Errorf("%s has an invalid port", what)
		}
	}
	if err := redisurl.CheckOptions(what, u.Query(), optionReasons); err != nil {
		return target{}, err
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return target{}, fmt.Errorf("%s is not a usable Redis URL: %s", what, msg)
	}
	return target{addr: o.Addr, username: o.Username, pass: o.Password, tls: o.TLSConfig != nil, db: o.DB, urlOpts: o, url: u}, nil
}

// optionReasons say why a URL may not set an option the store sets
// itself (see redisurl.CheckOptions).
var optionReasons = map[redisurl.Setting]string{
	redisurl.Timeouts: "the store sets the dial, read and write timeouts itself",
	redisurl.Protocol: "the store speaks RESP2, whose replies have the REST API's shape",
	redisurl.Retries:  "the store turns go-redis's retries off, so that a failure surfaces within the timeouts",
}

// parseNode parses one cluster seed: "host:port" or a URL.
func parseNode(i int, raw string) (target, error) {
	what := fmt.Sprintf("cluster node %d", i+1)
	raw = strings.TrimSpace(raw)
	if strings.Contains(raw, "://") {
		t, err := parseURL(what, raw)
		if err != nil {
			return t, err
		}
		// Only the address and the credentials of a node are used.
		if t.url.RawQuery != "" {
			return target{}, fmt.Errorf("%s must not have query options: the store sets a cluster's connection options itself", what)
		}
		if t.db != 0 {
			return t, fmt.Errorf("%s selects database %d, but a Redis Cluster has only database 0", what, t.db)
		}
		return t, nil
	}
	host, port, err := net.SplitHostPort(raw)
	if err != nil || host == "" {
		return target{}, fmt.Errorf("%s %q must be host:port or a redis:// URL", what, raw)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return target{}, fmt.Errorf("%s %q has an invalid port", what, raw)
	}
	return target{addr: net.JoinHostPort(host, port)}, nil
}

// timeouts returns the three timeouts after defaults, or an error for a
// negative one.
func (o *Options) timeouts() (dial, read, write time.Duration, err error) {
	pick := func(name string, v time.Duration) (time.Duration, error) {
		switch {
		case v < 0:
			return 0, fmt.Errorf("redis %s timeout must not be negative", name)
		case v == 0:
			return DefaultTimeout, nil
		}
		return v, nil
	}
	if dial, err = pick("dial", o.DialTimeout); err != nil {
		return
	}
	if read, err = pick("read", o.ReadTimeout); err != nil {
		return
	}
	write, err = pick("write", o.WriteTimeout)
	return
}

// replicaWait validates WaitReplicas and WaitTimeout against the read
// timeout: nil when not waiting.
func (o *Options) replicaWait(read time.Duration) (*replicaWait, error) {
	switch {
	case o.WaitReplicas < 0:
		return nil, errors.New("redis wait replicas must not be negative")
	case o.WaitReplicas == 0 && o.WaitTimeout != 0:
		return nil, errors.New("redis wait timeout is set but wait replicas is not")
	case o.WaitReplicas == 0:
		return nil, nil
	}
	w := &replicaWait{n: int64(o.WaitReplicas), timeout: o.WaitTimeout}
	if w.timeout == 0 {
		w.timeout = (read / 2).Truncate(time.Millisecond)
	}
	if w.timeout < time.Millisecond || w.timeout >= read || w.timeout%time.Millisecond != 0 {
		return nil, fmt.Errorf("redis wait timeout must be a whole number of milliseconds from 1ms to less than the read timeout (%s), not %s", read, w.timeout)
	}
	return w, nil
}

// routeLogs sends go-redis's own log lines (pool dial failures and the
// like, which the store already reports as errors) to slog.Default() at
// debug level instead of stderr. go-redis has one logger per process, so
// this is done once.
var routeLogs sync.Once

// slogPrinter adapts slog to go-redis's logger interface.
type slogPrinter struct{}

func (slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// New validates o and builds the go-redis client, without any I/O. Bad
// options are an error in one sentence that never repeats a password. The
// first New routes go-redis's process-wide log output to slog.Default() at
// debug level.
func New(o Options) (*Client, error) {
	routeLogs.Do(func() { redis.SetLogger(slogPrinter{}) })
	hasURL, hasNodes := strings.TrimSpace(o.URL) != "", len(o.ClusterNodes) > 0
	switch {
	case hasURL && hasNodes:
		return nil, errors.New("redis store: set either a URL or cluster nodes, not both")
	case !hasURL && !hasNodes:
		return nil, errors.New("redis store: a URL or cluster nodes are required")
	}
	if o.PoolSize < 0 {
		return nil, errors.New("redis pool size must not be negative")
	}
	dial, read, write, err := o.timeouts()
	if err != nil {
		return nil, err
	}
	wait, err := o.replicaWait(read)
	if err != nil {
		return nil, err
	}
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if hasURL {
		t, err := parseURL("redis URL", strings.TrimSpace(o.URL))
		if err != nil {
			return nil, err
		}
		ro := t.urlOpts
		if o.PoolSize > 0 {
			if t.url.Query().Has("pool_size") {
				return nil, errors.New("redis URL must not set pool_size when Options.PoolSize is set: which one was meant is a guess")
			}
		}
		ro.Protocol = 2 // RESP2: replies shaped as the REST API's (flat HGETALL lists)
		ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = dial, read, write
		ro.ContextTimeoutEnabled = true
		ro.MaxRetries = -1 // no hidden retries: a failure surfaces within the timeouts
		ro.DialerRetries = 1
		ro.DisableIdentity = true
		ro.MaintNotificationsConfig = noMaint
		if o.PoolSize > 0 {
			ro.PoolSize = o.PoolSize
		}
		if o.Dialer != nil {
			ro.Dialer = o.Dialer
		}
		return &Client{c: redis.NewClient(ro), location: t.addr, timeout: read, wait: wait}, nil
	}
	co := &redis.ClusterOptions{
		Protocol:    2,
		DialTimeout: dial, ReadTimeout: read, WriteTimeout: write,
		ContextTimeoutEnabled:    true,
		MaxRetries:               -1,
		DialerRetries:            1,
		DisableIdentity:          true,
		DisableRoutingPolicies:   true, // every command is routed by its first key
		MaintNotificationsConfig: noMaint,
		PoolSize:                 o.PoolSize,
		Dialer:                   o.Dialer,
	}
	var creds *target
	for i, raw := range o.ClusterNodes {
		t, err := parseNode(i, raw)
		if err != nil {
			return nil, err
		}
		co.Addrs = append(co.Addrs, t.addr)
		if t.urlOpts == nil {
			continue
		}
		if creds == nil {
			creds = &t
		} else if creds.username != t.username || creds.pass != t.pass || creds.tls != t.tls {
			return nil, errors.New("redis cluster nodes given as URLs must all use the same username, password and scheme")
		}
	}
	if creds != nil {
		co.Username, co.Password = creds.username, creds.pass
		if creds.tls {
			// Each node is verified against its own host name: an empty
			// ServerName makes the TLS dialer take it from the address.
			co.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	cc := redis.NewClusterClient(co)
	if wait != nil {
		wait.cluster = cc
	}
	return &Client{c: cc, cluster: cc, location: strings.Join(co.Addrs, ","), timeout: read, wait: wait}, nil
}
