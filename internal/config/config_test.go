package config

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env turns a map into a getenv function.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	got, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Store: File, StoreReason: "auto: no database is configured",
		KeyPrefix: "tokenledger",
		File:      "logs/token_usage.json", FileFrom: "default",
		SpoolDir: "logs/token_usage.json.spool", DBTimeout: 2 * time.Second, Migrate: true,
		MigrateFiles:  []string{"logs/token_usage.json"},
		RetentionDays: 90,
		Addr:          "127.0.0.1:8080", AddrFrom: "default",
		LogLevel: slog.LevelInfo,
		Proxy:    ProxyConfig{Overrides: map[string]string{}, Extra: map[string]string{}},

		MetricsMaxModels: 100,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(empty) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"kv from Vercel KV vars", map[string]string{"KV_REST_API_URL": " https://kv.example.com ", "KV_REST_API_TOKEN": " tok "},
			func(t *testing.T, c Config) {
				eq(t, "Store", c.Store, KVRest)
				eq(t, "StoreReason", c.StoreReason, "auto: KV_REST_API_URL and its token are set")
				eq(t, "KVRestURL", c.KVRestURL, "https://kv.example.com")
				eq(t, "KVRestToken", c.KVRestToken, "tok")
			}},
		{"kv from Upstash vars", map[string]string{"UPSTASH_REDIS_REST_URL": "https://u.example.com", "UPSTASH_REDIS_REST_TOKEN": "t"},
			func(t *testing.T, c Config) {
				eq(t, "Store", c.Store, KVRest)
				eq(t, "KVRestFrom", c.KVRestFrom, "UPSTASH_REDIS_REST_URL")
			}},
		{"KV_REST_API wins over Upstash", map[string]string{
			"UPSTASH_REDIS_REST_URL": "https://u.example.com", "UPSTASH_REDIS_REST_TOKEN": "t1",
			"KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "t2"},
			func(t *testing.T, c Config) {
				eq(t, "KVRestURL", c.KVRestURL, "https://kv.example.com")
				eq(t, "KVRestToken", c.KVRestToken, "t2")
			}},
		{"kv-rest asked for", map[string]string{"TOKENLEDGER_STORE": "KV-REST", "KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "t"},
			func(t *testing.T, c Config) {
				eq(t, "Store", c.Store, KVRest)
				eq(t, "StoreReason", c.StoreReason, "TOKENLEDGER_STORE=kv-rest")
			}},
		{"kv, the earlier name of kv-rest", map[string]string{"TOKENLEDGER_STORE": "kv", "KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "t"},
			func(t *testing.T, c Config) {
				eq(t, "Store", c.Store, KVRest)
				eq(t, "StoreReason", c.StoreReason, "TOKENLEDGER_STORE=kv")
			}},
		{"REST beats a Redis URL in auto", map[string]string{"KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "t", "KV_URL": "rediss://default:pw@kv.example.com:6379"},
			func(t *testing.T, c Config) { eq(t, "Store", c.Store, KVRest) }},
		{"redis from REDIS_URL", map[string]string{"REDIS_URL": "redis://localhost:6379/2"},
			func(t *testing.T, c Config) {
				eq(t, "Store", c.Store, Redis)
				eq(t, "StoreReason", c.StoreReason, "auto: REDIS_URL is set")
			}},
		{"redis URL options tokenledger does not set", map[string]string{"REDIS_URL": "redis://localhost:6379/2?pool_size=20&client_name=ledger"},
			func(t *testing.T, c Config) {
				eq(t, "RedisURL", c.RedisURL, "redis://localhost:6379/2?pool_size=20&client_name=ledger")
			}},
		{"REDIS_URL wins over KV_URL", map[string]string{"KV_URL": "rediss://a:6379", "REDIS_URL": "redis://b:6379"},
			func(t *testing.T, c Config) {
				eq(t, "RedisURL", c.RedisURL, "redis://b:6379")
				eq(t, "RedisURLFrom", c.RedisURLFrom, "REDIS_URL")
			}},
		{"redis from cluster nodes", map[string]string{"REDIS_CLUSTER_NODES": "10.0.0.1:7000, 10.0.0.2:7001 ,[::1]:7002"},
			func(t *testing.T, c Config) {
				eq(t, "Store", c.Store, Redis)
				eq(t, "RedisClusterNodes", strings.Join(c.RedisClusterNodes, "|"), "10.0.0.1:7000|10.0.0.2:7001|[::1]:7002")
			}},
		{"REST wins; cluster nodes beside Vercel KV's KV_URL do not matter", map[string]string{"KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "t", "KV_URL": "rediss://kv.example.com:6379", "REDIS_CLUSTER_NODES": "a:7000"},
			func(t *testing.T, c Config) { eq(t, "Store", c.Store, KVRest) }},
		{"explicit file despite a database", map[string]string{"TOKENLEDGER_STORE": "file", "REDIS_URL": "redis://x:1"},
			func(t *testing.T, c Config) {
				eq(t, "Store", c.Store, File)
				eq(t, "StoreReason", c.StoreReason, "TOKENLEDGER_STORE=file")
			}},
		{"explicit memory, any case", map[string]string{"TOKENLEDGER_STORE": " Memory "},
			func(t *testing.T, c Config) { eq(t, "Store", c.Store, Memory) }},
		{"explicit auto", map[string]string{"TOKENLEDGER_STORE": "auto"},
			func(t *testing.T, c Config) { eq(t, "Store", c.Store, File) }},
		{"file from TOKENLEDGER_FILE", map[string]string{"TOKENLEDGER_FILE": " /data/usage.json "},
			func(t *testing.T, c Config) {
				eq(t, "File", c.File, "/data/usage.json")
				eq(t, "FileFrom", c.FileFrom, "TOKENLEDGER_FILE")
			}},
		{"file on Vercel in TMPDIR", map[string]string{"VERCEL": "1", "TMPDIR": "/var/tmp", "VERCEL_ENV": "production", "VERCEL_REGION": "iad1"},
			func(t *testing.T, c Config) {
				eq(t, "File", c.File, "/var/tmp/token_usage.json")
				eq(t, "Vercel", c.Vercel, true)
				eq(t, "VercelEnv", c.VercelEnv, "production")
				eq(t, "VercelRegion", c.VercelRegion, "iad1")
			}},
		{"file on Vercel without TMPDIR", map[string]string{"VERCEL": "1"},
			func(t *testing.T, c Config) {
				eq(t, "File", c.File, "/tmp/token_usage.json")
				eq(t, "MigrateFiles", strings.Join(c.MigrateFiles, ","), "/tmp/token_usage.json,logs/token_usage.json")
			}},
		{"TOKENLEDGER_FILE wins on Vercel", map[string]string{"VERCEL": "1", "TOKENLEDGER_FILE": "/x.json"},
			func(t *testing.T, c Config) { eq(t, "File", c.File, "/x.json") }},
		{"spool beside the file", map[string]string{"TOKENLEDGER_FILE": "/data/u.json"},
			func(t *testing.T, c Config) { eq(t, "SpoolDir", c.SpoolDir, "/data/u.json.spool") }},
		{"spool dir", map[string]string{"TOKENLEDGER_SPOOL_DIR": "/var/spool/tl"},
			func(t *testing.T, c Config) { eq(t, "SpoolDir", c.SpoolDir, "/var/spool/tl") }},
		{"db timeout", map[string]string{"TOKENLEDGER_DB_TIMEOUT": "750ms"},
			func(t *testing.T, c Config) { eq(t, "DBTimeout", c.DBTimeout, 750*time.Millisecond) }},
		{"migration off", map[string]string{"TOKENLEDGER_MIGRATE": "0"},
			func(t *testing.T, c Config) { eq(t, "Migrate", c.Migrate, false) }},
		{"retention", map[string]string{"TOKENLEDGER_RETENTION_DAYS": "30"},
			func(t *testing.T, c Config) { eq(t, "RetentionDays", c.RetentionDays, 30) }},
		{"key prefix", map[string]string{"TOKENLEDGER_KEY_PREFIX": "acme:usage"},
			func(t *testing.T, c Config) { eq(t, "KeyPrefix", c.KeyPrefix, "acme:usage") }},
		{"admin key", map[string]string{"TOKENLEDGER_ADMIN_KEY": "0123456789abcdef"},
			func(t *testing.T, c Config) { eq(t, "AdminKey", c.AdminKey, "0123456789abcdef") }},
		{"API and read keys", map[string]string{"TOKENLEDGER_API_KEY": "writer-key-0123456789", "TOKENLEDGER_READ_KEY": "reader-key-0123456789"},
			func(t *testing.T, c Config) {
				eq(t, "APIKey", c.APIKey, "writer-key-0123456789")
				eq(t, "ReadKey", c.ReadKey, "reader-key-0123456789")
			}},
		{"no rate limit by default", nil,
			func(t *testing.T, c Config) {
				eq(t, "RateLimit", c.RateLimit, 0.0)
				eq(t, "RateBurst", c.RateBurst, 0)
				eq(t, "TrustForwardedFor", c.TrustForwardedFor, false)
			}},
		{"rate limit with the default burst", map[string]string{"TOKENLEDGER_RATE_LIMIT": "0.5"},
			func(t *testing.T, c Config) {
				eq(t, "RateLimit", c.RateLimit, 0.5)
				eq(t, "RateBurst", c.RateBurst, MinDefaultBurst)
			}},
		{"a fast rate limit's default burst is one second's worth", map[string]string{"TOKENLEDGER_RATE_LIMIT": "99.5"},
			func(t *testing.T, c Config) { eq(t, "RateBurst", c.RateBurst, 100) }},
		{"trust forwarded off without limit", map[string]string{"TOKENLEDGER_TRUST_FORWARDED_FOR": "0"},
			func(t *testing.T, c Config) {
				eq(t, "RateLimit", c.RateLimit, 0)
				eq(t, "TrustForwardedFor", c.TrustForwardedFor, false)
			}},
		{"rate limit and burst", map[string]string{"TOKENLEDGER_RATE_LIMIT": "5", "TOKENLEDGER_RATE_BURST": "2", "TOKENLEDGER_TRUST_FORWARDED_FOR": "true"},
			func(t *testing.T, c Config) {
				eq(t, "RateLimit", c.RateLimit, 5.0)
				eq(t, "RateBurst", c.RateBurst, 2)
				eq(t, "TrustForwardedFor", c.TrustForwardedFor, true)
			}},
		{"addr", map[string]string{"TOKENLEDGER_ADDR": "0.0.0.0:9000", "PORT": "3000"},
			func(t *testing.T, c Config) {
				eq(t, "Addr", c.Addr, "0.0.0.0:9000")
				eq(t, "AddrFrom", c.AddrFrom, "TOKENLEDGER_ADDR")
			}},
		{"PORT alone listens on every interface", map[string]string{"PORT": "3000"},
			func(t *testing.T, c Config) {
				eq(t, "Addr", c.Addr, ":3000")
				eq(t, "AddrFrom", c.AddrFrom, "PORT")
			}},
		{"log level", map[string]string{"TOKENLEDGER_LOG_LEVEL": "DEBUG"},
			func(t *testing.T, c Config) { eq(t, "LogLevel", c.LogLevel, slog.LevelDebug) }},
		{"VERCEL=0", map[string]string{"VERCEL": "0"},
			func(t *testing.T, c Config) { eq(t, "Vercel", c.Vercel, false) }},
		{"blank values are unset", map[string]string{"TOKENLEDGER_STORE": "  ", "PORT": " ", "TOKENLEDGER_RETENTION_DAYS": "\t"},
			func(t *testing.T, c Config) {
				eq(t, "Store", c.Store, File)
				eq(t, "Addr", c.Addr, DefaultAddr)
				eq(t, "RetentionDays", c.RetentionDays, 90)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // the whole message
	}{
		{"unknown store", map[string]string{"TOKENLEDGER_STORE": "postgres"},
			`TOKENLEDGER_STORE must be auto, file, redis, kv-rest (or kv) or memory, not "postgres"`},
		{"kv without credentials", map[string]string{"TOKENLEDGER_STORE": "kv", "REDIS_URL": "redis://x:1"},
			"TOKENLEDGER_STORE=kv needs KV_REST_API_URL and KV_REST_API_TOKEN (or UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN)"},
		{"kv-rest without credentials", map[string]string{"TOKENLEDGER_STORE": "kv-rest"},
			"TOKENLEDGER_STORE=kv-rest needs KV_REST_API_URL and KV_REST_API_TOKEN (or UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN)"},
		{"redis without URL", map[string]string{"TOKENLEDGER_STORE": "redis"},
			"TOKENLEDGER_STORE=redis needs REDIS_URL (or KV_URL, or REDIS_CLUSTER_NODES)"},
		{"REST URL without token", map[string]string{"KV_REST_API_URL": "https://kv.example.com"},
			"KV_REST_API_URL is set but KV_REST_API_TOKEN is not; set both or neither"},
		{"REST token without URL", map[string]string{"UPSTASH_REDIS_REST_TOKEN": "t"},
			"UPSTASH_REDIS_REST_TOKEN is set but UPSTASH_REDIS_REST_URL is not; set both or neither"},
		{"REST URL not http", map[string]string{"KV_REST_API_URL": "redis://kv.example.com", "KV_REST_API_TOKEN": "t"},
			"KV_REST_API_URL must be an http:// or https:// URL with a host, such as https://example.upstash.io"},
		{"redis URL wrong scheme, password not echoed", map[string]string{"REDIS_URL": "http://user:hunter2@host:6379"},
			"REDIS_URL must be a redis:// or rediss:// URL with a host, such as redis://localhost:6379/0"},
		{"redis URL bad port", map[string]string{"KV_URL": "redis://host:99999"},
			`KV_URL has a bad port: port "99999" is not a number from 0 to 65535`},
		{"redis URL bad db", map[string]string{"REDIS_URL": "redis://host:6379/x"},
			`REDIS_URL must name the database as a number after the host (redis://host:6379/0), not "x"`},
		// A password holding an unescaped / ? or # ends up in what url.Parse
		// takes for the host, path, query or fragment: no part is repeated.
		{"redis URL with an unescaped / in its password", map[string]string{"REDIS_URL": "redis://user:12/hunter2@redis.example.com:6379/0"},
			"REDIS_URL has an @ after a /, ? or # of its address; URL-escape those characters in the user name and password (/ as %2F, ? as %3F, # as %23)"},
		{"redis URL with an unescaped ? in its password", map[string]string{"KV_URL": "redis://user:12?hunter2@redis.example.com:6379/0"},
			"KV_URL has an @ after a /, ? or # of its address; URL-escape those characters in the user name and password (/ as %2F, ? as %3F, # as %23)"},
		{"redis URL with an unescaped # in its password", map[string]string{"REDIS_URL": "redis://user:ab#hunter2@redis.example.com:6379"},
			"REDIS_URL has an @ after a /, ? or # of its address; URL-escape those characters in the user name and password (/ as %2F, ? as %3F, # as %23)"},
		// go-redis reads these from the URL's query; tokenledger sets them
		// itself and would overwrite them without a word.
		{"redis URL read_timeout", map[string]string{"REDIS_URL": "redis://host:6379/0?read_timeout=30s"},
			"REDIS_URL must not set read_timeout: TOKENLEDGER_DB_TIMEOUT sets tokenledger's Redis dial, read and write timeouts"},
		{"redis URL write_timeout", map[string]string{"KV_URL": "redis://host:6379?write_timeout=1s"},
			"KV_URL must not set write_timeout: TOKENLEDGER_DB_TIMEOUT sets tokenledger's Redis dial, read and write timeouts"},
		{"redis URL protocol", map[string]string{"REDIS_URL": "redis://host:6379/0?protocol=3"},
			"REDIS_URL must not set protocol: tokenledger speaks RESP2 to Redis, whose replies it reads in the REST API's shape"},
		{"redis URL max_retries", map[string]string{"REDIS_URL": "redis://host:6379/0?pool_size=5&max_retries=5"},
			"REDIS_URL must not set max_retries: tokenledger turns go-redis's retries off, so that a failed call goes to the fallback spool within TOKENLEDGER_DB_TIMEOUT"},
		{"redis URL retry backoff", map[string]string{"REDIS_URL": "redis://host:6379/0?max_retry_backoff=1s"},
			"REDIS_URL must not set max_retry_backoff: tokenledger turns go-redis's retries off, so that a failed call goes to the fallback spool within TOKENLEDGER_DB_TIMEOUT"},
		{"cluster nodes and a URL", map[string]string{"REDIS_CLUSTER_NODES": "a:7000", "KV_URL": "redis://b:6379"},
			"REDIS_CLUSTER_NODES and KV_URL are both set; set one: the cluster's seed nodes or one server's URL"},
		{"cluster nodes and a URL, redis asked for", map[string]string{"TOKENLEDGER_STORE": "redis", "REDIS_CLUSTER_NODES": "a:7000", "REDIS_URL": "redis://b:6379"},
			"REDIS_CLUSTER_NODES and REDIS_URL are both set; set one: the cluster's seed nodes or one server's URL"},
		{"cluster node without port", map[string]string{"REDIS_CLUSTER_NODES": "a:7000,b"},
			`REDIS_CLUSTER_NODES must be a comma-separated list of host:port seed nodes, and "b" is not one`},
		{"cluster node empty", map[string]string{"REDIS_CLUSTER_NODES": "a:7000,,b:7001"},
			`REDIS_CLUSTER_NODES must be a comma-separated list of host:port seed nodes, and "" is not one`},
		{"db timeout too short", map[string]string{"TOKENLEDGER_DB_TIMEOUT": "10ms"},
			`TOKENLEDGER_DB_TIMEOUT must be a duration from 100ms to 1m, such as 2s, not "10ms"`},
		{"db timeout not a duration", map[string]string{"TOKENLEDGER_DB_TIMEOUT": "2"},
			`TOKENLEDGER_DB_TIMEOUT must be a duration from 100ms to 1m, such as 2s, not "2"`},
		{"migrate not a bool", map[string]string{"TOKENLEDGER_MIGRATE": "yes"},
			`TOKENLEDGER_MIGRATE must be 1 or 0 (true or false), not "yes"`},
		{"retention zero", map[string]string{"TOKENLEDGER_RETENTION_DAYS": "0"},
			`TOKENLEDGER_RETENTION_DAYS must be a whole number of days from 1 to 3650, not "0"`},
		{"retention text", map[string]string{"TOKENLEDGER_RETENTION_DAYS": "90d"},
			`TOKENLEDGER_RETENTION_DAYS must be a whole number of days from 1 to 3650, not "90d"`},
		{"retention signed", map[string]string{"TOKENLEDGER_RETENTION_DAYS": "+30"},
			`TOKENLEDGER_RETENTION_DAYS must be a whole number of days from 1 to 3650, not "+30"`},
		{"retention too big", map[string]string{"TOKENLEDGER_RETENTION_DAYS": "3651"},
			`TOKENLEDGER_RETENTION_DAYS must be a whole number of days from 1 to 3650, not "3651"`},
		{"key prefix with hash tag", map[string]string{"TOKENLEDGER_KEY_PREFIX": "a{b}"},
			`TOKENLEDGER_KEY_PREFIX must be printable ASCII without spaces or braces (braces are Redis hash tags), not "a{b}"`},
		{"key prefix with space", map[string]string{"TOKENLEDGER_KEY_PREFIX": "a b"},
			`TOKENLEDGER_KEY_PREFIX must be printable ASCII without spaces or braces (braces are Redis hash tags), not "a b"`},
		{"short admin key", map[string]string{"TOKENLEDGER_ADMIN_KEY": "secret"},
			"TOKENLEDGER_ADMIN_KEY must be at least 16 characters long (a short key can be guessed)"},
		{"admin key with space", map[string]string{"TOKENLEDGER_ADMIN_KEY": "0123456789 abcdef"},
			"TOKENLEDGER_ADMIN_KEY must be printable ASCII without spaces"},
		{"short API key", map[string]string{"TOKENLEDGER_API_KEY": "hunter2"},
			"TOKENLEDGER_API_KEY must be at least 16 characters long (a short key can be guessed)"},
		{"read key not ASCII", map[string]string{"TOKENLEDGER_READ_KEY": "hunter2-0123456789-ключ"},
			"TOKENLEDGER_READ_KEY must be printable ASCII without spaces"},
		{"admin key equal to the API key", map[string]string{"TOKENLEDGER_ADMIN_KEY": "hunter2-0123456789", "TOKENLEDGER_API_KEY": "hunter2-0123456789"},
			"TOKENLEDGER_ADMIN_KEY must differ from TOKENLEDGER_API_KEY: whoever can log usage must not be able to delete it"},
		{"admin key equal to the read key", map[string]string{"TOKENLEDGER_ADMIN_KEY": "hunter2-0123456789", "TOKENLEDGER_READ_KEY": "hunter2-0123456789"},
			"TOKENLEDGER_ADMIN_KEY must differ from TOKENLEDGER_READ_KEY: whoever can read usage must not be able to delete it"},
		{"rate limit zero", map[string]string{"TOKENLEDGER_RATE_LIMIT": "0"},
			`TOKENLEDGER_RATE_LIMIT must be a number of requests per second per client, more than 0 and at most 1000000 (such as 5 or 0.5), not "0"`},
		{"rate limit negative", map[string]string{"TOKENLEDGER_RATE_LIMIT": "-1"},
			`TOKENLEDGER_RATE_LIMIT must be a number of requests per second per client, more than 0 and at most 1000000 (such as 5 or 0.5), not "-1"`},
		{"rate limit infinite", map[string]string{"TOKENLEDGER_RATE_LIMIT": "Inf"},
			`TOKENLEDGER_RATE_LIMIT must be a number of requests per second per client, more than 0 and at most 1000000 (such as 5 or 0.5), not "Inf"`},
		{"rate limit NaN", map[string]string{"TOKENLEDGER_RATE_LIMIT": "NaN"},
			`TOKENLEDGER_RATE_LIMIT must be a number of requests per second per client, more than 0 and at most 1000000 (such as 5 or 0.5), not "NaN"`},
		{"rate limit with a unit", map[string]string{"TOKENLEDGER_RATE_LIMIT": "5/s"},
			`TOKENLEDGER_RATE_LIMIT must be a number of requests per second per client, more than 0 and at most 1000000 (such as 5 or 0.5), not "5/s"`},
		{"burst without limit", map[string]string{"TOKENLEDGER_RATE_BURST": "5"},
			"TOKENLEDGER_RATE_BURST is set but TOKENLEDGER_RATE_LIMIT is not; set the limit too, or neither"},
		{"burst zero", map[string]string{"TOKENLEDGER_RATE_LIMIT": "5", "TOKENLEDGER_RATE_BURST": "0"},
			`TOKENLEDGER_RATE_BURST must be a whole number of requests from 1 to 1000000, not "0"`},
		{"burst fraction", map[string]string{"TOKENLEDGER_RATE_LIMIT": "5", "TOKENLEDGER_RATE_BURST": "1.5"},
			`TOKENLEDGER_RATE_BURST must be a whole number of requests from 1 to 1000000, not "1.5"`},
		{"trust forwarded without limit", map[string]string{"TOKENLEDGER_TRUST_FORWARDED_FOR": "1"},
			"TOKENLEDGER_TRUST_FORWARDED_FOR is on but TOKENLEDGER_RATE_LIMIT is not set; it only says how the rate limit tells clients apart, so set the limit too, or turn it off"},
		{"trust forwarded not a bool", map[string]string{"TOKENLEDGER_TRUST_FORWARDED_FOR": "proxy"},
			`TOKENLEDGER_TRUST_FORWARDED_FOR must be 1 or 0 (true or false), not "proxy"`},
		{"bad addr", map[string]string{"TOKENLEDGER_ADDR": "8080"},
			`TOKENLEDGER_ADDR must be host:port or :port (such as 127.0.0.1:8080), not "8080"`},
		{"bad addr port", map[string]string{"TOKENLEDGER_ADDR": "localhost:http"},
			`TOKENLEDGER_ADDR must be host:port or :port (such as 127.0.0.1:8080), not "localhost:http"`},
		{"bad PORT", map[string]string{"PORT": "80a"},
			`PORT must be a port number from 0 to 65535, not "80a"`},
		{"PORT too big", map[string]string{"PORT": "70000"},
			`PORT must be a port number from 0 to 65535, not "70000"`},
		{"bad VERCEL", map[string]string{"VERCEL": "yes"},
			`VERCEL must be 1 or 0 (true or false), not "yes"`},
		{"bad log level", map[string]string{"TOKENLEDGER_LOG_LEVEL": "loud"},
			`TOKENLEDGER_LOG_LEVEL must be debug, info, warn or error, not "loud"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load = %+v, want error %q", c, tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error =\n%q\nwant\n%q", got, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{
		"KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "resttoken",
		"REDIS_URL": "redis://user:hunter2@host:6379", "TOKENLEDGER_ADMIN_KEY": "0123456789abcdef",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.Secrets(), ",")
	if want := "resttoken,0123456789abcdef,hunter2"; got != want {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
}

func TestSecretsCoverEveryVariable(t *testing.T) {
	c, err := Load(env(map[string]string{
		"KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "kv-token-1",
		"UPSTASH_REDIS_REST_URL": "https://u.example.com", "UPSTASH_REDIS_REST_TOKEN": "upstash-token-2",
		"REDIS_URL": "redis://user:redis%40pw-3@host:6379", "KV_URL": "rediss://default:kvurl-pw-4@host:6379",
		"TOKENLEDGER_API_KEY": "api-key-5-0123456789", "TOKENLEDGER_READ_KEY": "read-key-6-0123456789",
		"TOKENLEDGER_ADMIN_KEY": "admin-key-7-0123456789",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.Secrets(), ",")
	for _, want := range []string{"kv-token-1", "upstash-token-2", "redis%40pw-3", "redis@pw-3", "kvurl-pw-4", "api-key-5-0123456789", "read-key-6-0123456789", "admin-key-7-0123456789"} {
		if !strings.Contains(","+got+",", ","+want+",") {
			t.Errorf("Secrets() = %q lacks %q", got, want)
		}
	}
}

func TestSecretsFromEnv(t *testing.T) {
	// Values that do not load are secrets all the same: a malformed URL or
	// a key of a real key's length that breaks another rule must not be
	// printed either. A key too short to be one is not: it is refused
	// without being repeated and never used, and redacting it would blank
	// that word in every line ("a [redacted] key can be guessed" for a key
	// "short"); cmd/tokenledger TestNoSecretLeaks checks that such a key
	// ("SECRETshort") appears in no output all the same.
	got := SecretsFromEnv(env(map[string]string{
		"TOKENLEDGER_API_KEY": " short ", "TOKENLEDGER_READ_KEY": "has spaces 0123456789", "REDIS_URL": "redis://u:pw-in-bad-url@host:notaport",
		"KV_URL": "redis://lonetoken@host:1/0", "TOKENLEDGER_ADMIN_KEY": "", "KV_REST_API_TOKEN": "tok",
	}))
	if want := "tok,has spaces 0123456789,pw-in-bad-url,lonetoken"; strings.Join(got, ",") != want {
		t.Errorf("SecretsFromEnv = %q, want %q", strings.Join(got, ","), want)
	}
	for _, tc := range []struct{ url, want string }{
		{"redis://host:6379", ""},
		{"redis://default@host:6379", ""},
		{"redis://:pw@host:6379", "pw"},
		{"redis://u:p%2Fw@host/0", "p%2Fw,p/w"},
		{"redis://u:p@w@host/0", "p@w"},
		// A password that is not URL-escaped: url.Parse would take part of
		// it for the host and the rest for the path, query or fragment.
		{"redis://u:12/TopSecretPart@redis.example.com:6379/0", "12/TopSecretPart"},
		{"redis://u:12?TopSecretPart@redis.example.com:6379/0", "12?TopSecretPart"},
		{"redis://u:12#TopSecretPart@host:6379", "12#TopSecretPart"},
		{"redis://a/b@host:6379", "a/b"},
		{"not a url", ""},
	} {
		if got := strings.Join(urlSecrets(tc.url), ","); got != tc.want {
			t.Errorf("urlSecrets(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
