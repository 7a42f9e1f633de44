// Package config reads tokenledger's environment into a validated Config,
// including which store to use and why. It is, with cmd/ and api/, the only
// code that looks at the environment, and it does so only through the
// getenv function it is given.
package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// StoreKind names a store.
type StoreKind string

// The store kinds TOKENLEDGER_STORE accepts. Auto is resolved by Load and
// never appears in Config.Store. Redis and KVRest are the kinds of
// store/redis (redis.KindRedis, redis.KindKVRest); "kv", the earlier name
// of KVRest, is still accepted.
const (
	Auto   StoreKind = "auto"
	File   StoreKind = "file"
	Redis  StoreKind = "redis"
	KVRest StoreKind = "kv-rest"
	Memory StoreKind = "memory"
)

// Defaults for values the environment leaves unset.
const (
	DefaultKeyPrefix = "tokenledger"
	DefaultFile      = "logs/token_usage.json"
	DefaultAddr      = "127.0.0.1:8080"
	DefaultDBTimeout = 2 * time.Second
)

// MinKeyLength is the shortest key (TOKENLEDGER_API_KEY,
// TOKENLEDGER_READ_KEY, TOKENLEDGER_ADMIN_KEY) accepted: a key that can be
// guessed protects nothing.
const MinKeyLength = 16

// MinAdminKeyLength is the shortest TOKENLEDGER_ADMIN_KEY accepted.
const MinAdminKeyLength = MinKeyLength

// Bounds of the per-client rate limit.
const (
	// MaxRateLimit is the largest TOKENLEDGER_RATE_LIMIT, in requests per
	// second.
	MaxRateLimit = 1_000_000
	// MaxRateBurst is the largest TOKENLEDGER_RATE_BURST.
	MaxRateBurst = 1_000_000
	// MinDefaultBurst is the smallest burst when TOKENLEDGER_RATE_BURST is
	// unset: a front end loading a page sends a few requests at once.
	MinDefaultBurst = 10
)

// SecretVariables are the environment variables whose whole value is a
// secret. REDIS_URL and KV_URL hold one too: their password.
var SecretVariables = []string{
	"KV_REST_API_TOKEN", "UPSTASH_REDIS_REST_TOKEN",
	"TOKENLEDGER_API_KEY", "TOKENLEDGER_READ_KEY", "TOKENLEDGER_ADMIN_KEY",
}

// Config is tokenledger's validated configuration. It holds secrets
// (KVRestToken, the password inside RedisURL, APIKey, ReadKey, AdminKey):
// never log or show it whole; Secrets lists what to redact.
type Config struct {
	// Store is the store to open: File, Redis, KV or Memory, never Auto.
	Store StoreKind
	// StoreReason says in a few words why Store was chosen, for the
	// startup log line, e.g. "auto: REDIS_URL is set".
	StoreReason string

	// KVRestURL and KVRestToken are the Vercel KV / Upstash REST API
	// endpoint and token; KVRestFrom names the variable pair they came
	// from ("KV_REST_API_URL" or "UPSTASH_REDIS_REST_URL").
	KVRestURL, KVRestToken, KVRestFrom string

	// RedisURL is the redis:// or rediss:// URL (it may hold a password);
	// RedisURLFrom names the variable it came from ("REDIS_URL" or
	// "KV_URL").
	RedisURL, RedisURLFrom string
	// RedisClusterNodes are the host:port seed nodes of a Redis Cluster,
	// from REDIS_CLUSTER_NODES; nil for a single server.
	RedisClusterNodes []string

	// KeyPrefix starts every database key (TOKENLEDGER_KEY_PREFIX).
	KeyPrefix string

	// File is the local usage file (TOKENLEDGER_FILE): the store itself
	// when Store is File, the fallback spool and migration source when a
	// database is configured.
	File string
	// FileFrom says where File came from: "TOKENLEDGER_FILE", "default" or
	// "default on Vercel (temp dir)".
	FileFrom string

	// SpoolDir is where events wait while the database is unavailable
	// (TOKENLEDGER_SPOOL_DIR, default File + ".spool"). Used only with a
	// database store; one process owns it at a time.
	SpoolDir string

	// Prices is the path of a price file in LiteLLM's format whose models
	// replace or add to the built-in table (TOKENLEDGER_PRICES; "" for the
	// built-in table alone). The file is read by internal/app at start.
	Prices string

	// Proxy is the recording proxy's configuration.
	Proxy ProxyConfig
	// MetricsMaxModels bounds the model label of /metrics
	// (TOKENLEDGER_METRICS_MAX_MODELS, default 100).
	MetricsMaxModels int

	// DBTimeout bounds each database call (TOKENLEDGER_DB_TIMEOUT, a Go
	// duration such as 2s; default DefaultDBTimeout).
	DBTimeout time.Duration

	// RedisWaitReplicas is how many replicas must have each write to
	// Redis before it is acknowledged (TOKENLEDGER_REDIS_WAIT_REPLICAS,
	// 0 to MaxWaitReplicas; 0, the default, waits for none); see
	// docs/redis.md, "Failover and WAIT".
	RedisWaitReplicas int
	// RedisWaitTimeout is how long a write waits for them
	// (TOKENLEDGER_REDIS_WAIT_TIMEOUT, below DBTimeout; default half of
	// DBTimeout); 0 when RedisWaitReplicas is 0.
	RedisWaitTimeout time.Duration

	// Migrate is whether serve and the Vercel functions import
	// MigrateFiles into the database on start (TOKENLEDGER_MIGRATE,
	// default true).
	Migrate bool
	// MigrateFiles are the local files to import into a database: File,
	// and on Vercel (where File is in the temp dir) also DefaultFile, the
	// path the original service wrote, relative to the deployment.
	MigrateFiles []string

	// RetentionDays is R: day D is kept while D ≥ today − R.
	RetentionDays int

	// Vercel is true when running on Vercel (VERCEL=1); VercelEnv and
	// VercelRegion are VERCEL_ENV and VERCEL_REGION as set ("" when not).
	Vercel                  bool
	VercelEnv, VercelRegion string

	// AdminKey, when not empty, allows DELETE /api/tokens with
	// "Authorization: Bearer <AdminKey>".
	AdminKey string
	// APIKey (TOKENLEDGER_API_KEY), when not empty, is needed to log
	// events (POST /api/tokens); it also allows reading.
	APIKey string
	// ReadKey (TOKENLEDGER_READ_KEY), when not empty, is needed to read
	// usage (GET /api/tokens); APIKey works too.
	ReadKey string

	// RateLimit is the per-client rate limit in requests per second
	// (TOKENLEDGER_RATE_LIMIT); 0 means no limit.
	RateLimit float64
	// RateBurst is how many requests a client may send at once
	// (TOKENLEDGER_RATE_BURST); 0 when RateLimit is 0.
	RateBurst int
	// TrustForwardedFor makes the rate limit take the client's address
	// from the last X-Forwarded-For entry (TOKENLEDGER_TRUST_FORWARDED_FOR),
	// for a server behind exactly one reverse proxy.
	TrustForwardedFor bool

	// envSecrets are the raw values of every secret variable, also of
	// those that lost to another (UPSTASH_REDIS_REST_TOKEN beside
	// KV_REST_API_TOKEN, KV_URL beside REDIS_URL).
	envSecrets []string

	// Addr is the listen address for serve; AddrFrom names where it came
	// from ("TOKENLEDGER_ADDR", "PORT" or "default").
	Addr, AddrFrom string

	// LogLevel is TOKENLEDGER_LOG_LEVEL (default info).
	LogLevel slog.Level
}

// Secrets returns every secret value in c, so that messages shown to
// users can have them removed: the REST token, the keys, the Redis
// password, and the values of secret variables that lost to another.
func (c Config) Secrets() []string {
	var s []string
	add := func(v string) {
		if v != "" && !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	add(c.KVRestToken)
	add(c.AdminKey)
	add(c.APIKey)
	add(c.ReadKey)
	for _, v := range urlSecrets(c.RedisURL) {
		add(v)
	}
	for _, v := range c.envSecrets {
		add(v)
	}
	return s
}

// SecretsFromEnv returns the value of every secret variable that is set
// (SecretVariables, and the password in REDIS_URL and KV_URL), valid or
// not, so that even a configuration that fails to load can be kept out
// of the output. The one exception is a key (TOKENLEDGER_API_KEY, _READ_KEY,
// _ADMIN_KEY) shorter than MinKeyLength: it is refused at start by a
// sentence that never repeats it, and is never used, so there is nothing
// to keep out; redacting it would blank that word wherever it stands (a
// key "short" made the refusal read "a [redacted] key can be guessed").
func SecretsFromEnv(getenv func(string) string) []string {
	var s []string
	for _, name := range SecretVariables {
		v := strings.TrimSpace(getenv(name))
		if strings.HasPrefix(name, "TOKENLEDGER_") && len(v) < MinKeyLength {
			continue
		}
		if v != "" && !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	for _, name := range []string{"REDIS_URL", "KV_URL"} {
		for _, v := range urlSecrets(strings.TrimSpace(getenv(name))) {
			if !slices.Contains(s, v) {
				s = append(s, v)
			}
		}
	}
	return s
}

// urlSecrets returns the credentials in a URL's user info: the password
// (raw and decoded), or the user name when it stands alone (a token
// written as redis://TOKEN@host). It also reads URLs url.Parse refuses.
// The user info is everything from "://" to the last @ of the value, not
// to the first / ? or #: a password that is not URL-escaped may hold
// them (see redisurl.CheckUserInfo).
func urlSecrets(v string) []string {
	_, rest, ok := strings.Cut(v, "://")
	if !ok {
		return nil
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil
	}
	info := rest[:at]
	user, pass, hasPass := strings.Cut(info, ":")
	cred := pass
	if !hasPass {
		cred = user
	}
	if cred == "" || (!hasPass && cred == "default") {
		return nil
	}
	out := []string{cred}
	if dec, err := url.PathUnescape(cred); err == nil && dec != cred {
		out = append(out, dec)
	}
	return out
}

// Load reads the environment through getenv and returns a validated
// Config. Every value is trimmed; an empty value counts as unset. A value
// that breaks a rule gives an error of one sentence naming the variable.
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	var c Config
	var err error

	if c.Vercel, err = parseBool("VERCEL", get("VERCEL")); err != nil {
		return Config{}, err
	}
	c.VercelEnv, c.VercelRegion = get("VERCEL_ENV"), get("VERCEL_REGION")

	if err := c.loadDatabase(get); err != nil {
		return Config{}, err
	}
	if c.KeyPrefix, err = parseKeyPrefix(get("TOKENLEDGER_KEY_PREFIX")); err != nil {
		return Config{}, err
	}
	c.loadFile(get)
	c.SpoolDir = get("TOKENLEDGER_SPOOL_DIR")
	if c.SpoolDir == "" {
		c.SpoolDir = c.File + ".spool"
	}
	c.Prices = get("TOKENLEDGER_PRICES")
	if c.DBTimeout, err = parseDBTimeout(get("TOKENLEDGER_DB_TIMEOUT")); err != nil {
		return Config{}, err
	}
	migrate := get("TOKENLEDGER_MIGRATE")
	if migrate == "" {
		migrate = "1"
	}
	if c.Migrate, err = parseBool("TOKENLEDGER_MIGRATE", migrate); err != nil {
		return Config{}, err
	}
	c.MigrateFiles = []string{c.File}
	if c.Vercel && c.File != DefaultFile {
		c.MigrateFiles = append(c.MigrateFiles, DefaultFile)
	}
	if c.RetentionDays, err = parseRetention(get("TOKENLEDGER_RETENTION_DAYS")); err != nil {
		return Config{}, err
	}
	c.envSecrets = SecretsFromEnv(getenv)
	if err := c.loadKeys(get); err != nil {
		return Config{}, err
	}
	if err := c.loadRateLimit(get); err != nil {
		return Config{}, err
	}
	if err := c.loadAddr(get); err != nil {
		return Config{}, err
	}
	if c.LogLevel, err = parseLogLevel(get("TOKENLEDGER_LOG_LEVEL")); err != nil {
		return Config{}, err
	}
	if err := c.loadProxy(get); err != nil {
		return Config{}, err
	}
	if err := c.loadMetrics(get); err != nil {
		return Config{}, err
	}
	if err := c.chooseStore(get("TOKENLEDGER_STORE")); err != nil {
		return Config{}, err
	}
	if err := c.loadWait(get); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadDatabase reads the REST credentials, the Redis URL and the cluster
// seed nodes.
func (c *Config) loadDatabase(get func(string) string) error {
	for _, pair := range [][2]string{
		{"KV_REST_API_URL", "KV_REST_API_TOKEN"},
		{"UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"},
	} {
		u, tok := get(pair[0]), get(pair[1])
		switch {
		case u == "" && tok == "":
			continue
		case u == "":
			return fmt.Errorf("%s is set but %s is not; set both or neither", pair[1], pair[0])
		case tok == "":
			return fmt.Errorf("%s is set but %s is not; set both or neither", pair[0], pair[1])
		}
		if err := checkHTTPURL(pair[0], u); err != nil {
			return err
		}
		if c.KVRestURL == "" { // KV_REST_API_* wins over UPSTASH_REDIS_REST_*
			c.KVRestURL, c.KVRestToken, c.KVRestFrom = u, tok, pair[0]
		}
	}
	for _, name := range []string{"REDIS_URL", "KV_URL"} {
		v := get(name)
		if v == "" {
			continue
		}
		if err := checkRedisURL(name, v); err != nil {
			return err
		}
		if c.RedisURL == "" { // REDIS_URL wins over KV_URL
			c.RedisURL, c.RedisURLFrom = v, name
		}
	}
	if v := get("REDIS_CLUSTER_NODES"); v != "" {
		for _, n := range strings.Split(v, ",") {
			n = strings.TrimSpace(n)
			if err := checkHostPort(n); err != nil {
				return fmt.Errorf("REDIS_CLUSTER_NODES must be a comma-separated list of host:port seed nodes, and %q is not one", redactHost(n))
			}
			c.RedisClusterNodes = append(c.RedisClusterNodes, n)
		}
	}
	return nil
}

// loadFile sets File: TOKENLEDGER_FILE, else the default, which on Vercel
// lies in the temp dir ($TMPDIR, else /tmp, as os.TempDir does).
func (c *Config) loadFile(get func(string) string) {
	switch v := get("TOKENLEDGER_FILE"); {
	case v != "":
		c.File, c.FileFrom = v, "TOKENLEDGER_FILE"
	case c.Vercel:
		dir := get("TMPDIR")
		if dir == "" {
			dir = "/tmp"
		}
		c.File, c.FileFrom = filepath.Join(dir, "token_usage.json"), "default on Vercel (temp dir)"
	default:
		c.File, c.FileFrom = DefaultFile, "default"
	}
}

// loadAddr sets Addr: TOKENLEDGER_ADDR, else ":$PORT" (every interface, as
// platforms that set PORT expect), else DefaultAddr.
func (c *Config) loadAddr(get func(string) string) error {
	if v := get("TOKENLEDGER_ADDR"); v != "" {
		if err := CheckListenAddr(v); err != nil {
			return fmt.Errorf("TOKENLEDGER_ADDR must be host:port or :port (such as 127.0.0.1:8080), not %q", v)
		}
		c.Addr, c.AddrFrom = v, "TOKENLEDGER_ADDR"
		return nil
	}
	if v := get("PORT"); v != "" {
		if _, err := parsePort(v); err != nil {
			return fmt.Errorf("PORT must be a port number from 0 to 65535, not %q", v)
		}
		c.Addr, c.AddrFrom = ":"+v, "PORT"
		return nil
	}
	c.Addr, c.AddrFrom = DefaultAddr, "default"
	return nil
}

// chooseStore resolves TOKENLEDGER_STORE, checking that an explicit choice
// has what it needs.
func (c *Config) chooseStore(v string) error {
	kind := StoreKind(strings.ToLower(v))
	if v == "" {
		kind = Auto
	}
	given := kind
	if kind == "kv" {
		kind = KVRest
	}
	switch kind {
	case Auto:
		switch {
		case c.KVRestURL != "":
			c.Store, c.StoreReason = KVRest, fmt.Sprintf("auto: %s and its token are set", c.KVRestFrom)
		case c.RedisURL != "":
			c.Store, c.StoreReason = Redis, fmt.Sprintf("auto: %s is set", c.RedisURLFrom)
		case len(c.RedisClusterNodes) > 0:
			c.Store, c.StoreReason = Redis, "auto: REDIS_CLUSTER_NODES is set"
		default:
			c.Store, c.StoreReason = File, "auto: no database is configured"
		}
	case KVRest:
		if c.KVRestURL == "" {
			return fmt.Errorf("TOKENLEDGER_STORE=%s needs KV_REST_API_URL and KV_REST_API_TOKEN (or UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN)", given)
		}
		c.Store, c.StoreReason = KVRest, "TOKENLEDGER_STORE="+string(given)
	case Redis:
		if c.RedisURL == "" && len(c.RedisClusterNodes) == 0 {
			return fmt.Errorf("TOKENLEDGER_STORE=redis needs REDIS_URL (or KV_URL, or REDIS_CLUSTER_NODES)")
		}
		c.Store, c.StoreReason = Redis, "TOKENLEDGER_STORE=redis"
	case File, Memory:
		c.Store, c.StoreReason = kind, "TOKENLEDGER_STORE="+string(kind)
	default:
		return fmt.Errorf("TOKENLEDGER_STORE must be auto, file, redis, kv-rest (or kv) or memory, not %q", v)
	}
	if c.Store == Redis && c.RedisURL != "" && len(c.RedisClusterNodes) > 0 {
		return fmt.Errorf("REDIS_CLUSTER_NODES and %s are both set; set one: the cluster's seed nodes or one server's URL", c.RedisURLFrom)
	}
	return nil
}
