package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/redisurl"
)

// parseLogLevel parses debug, info, warn or error (any case); "" is info.
func parseLogLevel(v string) (slog.Level, error) {
	switch strings.ToLower(v) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("TOKENLEDGER_LOG_LEVEL must be debug, info, warn or error, not %q", v)
}

// CheckListenAddr reports whether addr is host:port or :port with a port
// from 0 to 65535; the error names no variable.
func CheckListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	_, err = parsePort(port)
	return err
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not a number from 0 to 65535", s)
	}
	n, _ := strconv.Atoi(s)
	if n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 0 to 65535", s)
	}
	return n, nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("no host in %q", s)
	}
	n, err := parsePort(port)
	if err == nil && n == 0 {
		return fmt.Errorf("port 0 in %q", s)
	}
	return err
}

func parseBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, fmt.Errorf("%s must be 1 or 0 (true or false), not %q", name, v)
}

func parseKeyPrefix(v string) (string, error) {
	if v == "" {
		return DefaultKeyPrefix, nil
	}
	if len(v) > 64 {
		return "", fmt.Errorf("TOKENLEDGER_KEY_PREFIX must be at most 64 characters long")
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b <= ' ' || b > '~' || b == '{' || b == '}' {
			return "", fmt.Errorf("TOKENLEDGER_KEY_PREFIX must be printable ASCII without spaces or braces (braces are Redis hash tags), not %q", v)
		}
	}
	return v, nil
}

// parseDBTimeout parses a Go duration from 100ms to 1m; "" is the default.
func parseDBTimeout(v string) (time.Duration, error) {
	if v == "" {
		return DefaultDBTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 100*time.Millisecond || d > time.Minute {
		return 0, fmt.Errorf("TOKENLEDGER_DB_TIMEOUT must be a duration from 100ms to 1m, such as 2s, not %q", v)
	}
	return d, nil
}

func parseRetention(v string) (int, error) {
	if v == "" {
		return tokenledger.DefaultRetentionDays, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || strings.Trim(v, "0123456789") != "" || n < 1 || n > tokenledger.MaxRetentionDays {
		return 0, fmt.Errorf("TOKENLEDGER_RETENTION_DAYS must be a whole number of days from 1 to %d, not %q", tokenledger.MaxRetentionDays, v)
	}
	return n, nil
}

// loadKeys reads the API, read and admin keys. The admin key must differ
// from the others: whoever may only write or read must not be able to
// wipe everything.
func (c *Config) loadKeys(get func(string) string) error {
	var err error
	if c.APIKey, err = parseKey("TOKENLEDGER_API_KEY", get("TOKENLEDGER_API_KEY")); err != nil {
		return err
	}
	if c.ReadKey, err = parseKey("TOKENLEDGER_READ_KEY", get("TOKENLEDGER_READ_KEY")); err != nil {
		return err
	}
	if c.AdminKey, err = parseKey("TOKENLEDGER_ADMIN_KEY", get("TOKENLEDGER_ADMIN_KEY")); err != nil {
		return err
	}
	if c.AdminKey != "" && c.AdminKey == c.APIKey {
		return errors.New("TOKENLEDGER_ADMIN_KEY must differ from TOKENLEDGER_API_KEY: whoever can log usage must not be able to delete it")
	}
	if c.AdminKey != "" && c.AdminKey == c.ReadKey {
		return errors.New("TOKENLEDGER_ADMIN_KEY must differ from TOKENLEDGER_READ_KEY: whoever can read usage must not be able to delete it")
	}
	return nil
}

// parseKey checks a key: at least MinKeyLength printable ASCII characters
// without spaces. Its messages never repeat the value.
func parseKey(name, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if len(v) < MinKeyLength {
		return "", fmt.Errorf("%s must be at least %d characters long (a short key can be guessed)", name, MinKeyLength)
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b <= ' ' || b > '~' {
			return "", fmt.Errorf("%s must be printable ASCII without spaces", name)
		}
	}
	return v, nil
}

// loadRateLimit reads TOKENLEDGER_RATE_LIMIT (requests per second per
// client, off when unset), TOKENLEDGER_RATE_BURST (default the larger of
// MinDefaultBurst and one second's requests) and
// TOKENLEDGER_TRUST_FORWARDED_FOR. The last two only shape the limit, so
// either one on without it is refused: it would do nothing.
func (c *Config) loadRateLimit(get func(string) string) error {
	var err error
	if c.TrustForwardedFor, err = parseBool("TOKENLEDGER_TRUST_FORWARDED_FOR", get("TOKENLEDGER_TRUST_FORWARDED_FOR")); err != nil {
		return err
	}
	limit, burst := get("TOKENLEDGER_RATE_LIMIT"), get("TOKENLEDGER_RATE_BURST")
	if limit == "" {
		if burst != "" {
			return errors.New("TOKENLEDGER_RATE_BURST is set but TOKENLEDGER_RATE_LIMIT is not; set the limit too, or neither")
		}
		if c.TrustForwardedFor {
			return errors.New("TOKENLEDGER_TRUST_FORWARDED_FOR is on but TOKENLEDGER_RATE_LIMIT is not set; it only says how the rate limit tells clients apart, so set the limit too, or turn it off")
		}
		return nil
	}
	r, perr := strconv.ParseFloat(limit, 64)
	if perr != nil || strings.ContainsAny(limit, "xXpPnNiI_") || !(r > 0) || r > MaxRateLimit {
		return fmt.Errorf("TOKENLEDGER_RATE_LIMIT must be a number of requests per second per client, more than 0 and at most %d (such as 5 or 0.5), not %q", MaxRateLimit, limit)
	}
	c.RateLimit = r
	if burst == "" {
		c.RateBurst = max(MinDefaultBurst, int(math.Ceil(r)))
		return nil
	}
	b, perr := strconv.Atoi(burst)
	if perr != nil || strings.Trim(burst, "0123456789") != "" || b < 1 || b > MaxRateBurst {
		return fmt.Errorf("TOKENLEDGER_RATE_BURST must be a whole number of requests from 1 to %d, not %q", MaxRateBurst, burst)
	}
	c.RateBurst = b
	return nil
}

// checkHTTPURL checks a REST endpoint without echoing it (it is not
// secret, but keep messages uniform with the Redis URL's).
func checkHTTPURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s must be an http:// or https:// URL with a host, such as https://example.upstash.io", name)
	}
	if u.User != nil {
		return fmt.Errorf("%s must not hold credentials; the token goes in the matching _TOKEN variable", name)
	}
	return nil
}

// checkRedisURL checks a redis:// or rediss:// URL. Its messages never
// repeat the user info, which may hold a password: a URL whose user info
// url.Parse would cut short is refused first, so the port and the path
// that later messages quote cannot hold any of it.
func checkRedisURL(name, v string) error {
	if err := redisurl.CheckUserInfo(name, v); err != nil {
		return err
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return fmt.Errorf("%s must be a redis:// or rediss:// URL with a host, such as redis://localhost:6379/0", name)
	}
	if u.Port() != "" {
		if _, err := parsePort(u.Port()); err != nil {
			return fmt.Errorf("%s has a bad port: %s", name, err)
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 || strings.Trim(db, "0123456789") != "" {
			return fmt.Errorf("%s must name the database as a number after the host (redis://host:6379/0), not %q", name, db)
		}
	}
	return redisurl.CheckOptions(name, u.Query(), redisOptionReasons)
}

// redisOptionReasons say why a Redis URL may not set an option that
// tokenledger sets itself (see redisurl.CheckOptions).
var redisOptionReasons = map[redisurl.Setting]string{
	redisurl.Timeouts: "TOKENLEDGER_DB_TIMEOUT sets tokenledger's Redis dial, read and write timeouts",
	redisurl.Protocol: "tokenledger speaks RESP2 to Redis, whose replies it reads in the REST API's shape",
	redisurl.Retries:  "tokenledger turns go-redis's retries off, so that a failed call goes to the fallback spool within TOKENLEDGER_DB_TIMEOUT",
}

// redactHost drops anything before an @, in case a seed node was written
// with credentials.
func redactHost(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "…@" + s[i+1:]
	}
	return s
}
