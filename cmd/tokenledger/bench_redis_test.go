package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// countKeys returns how many keys of the Redis at addr match pattern.
func countKeys(t *testing.T, addr, pattern string) string {
	t.Helper()
	n, err := redistest.Command(addr, "EVAL", "return #redis.call('KEYS', ARGV[1])", "0", pattern)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(n, ":")
}

// TestBenchStoreOnRedisLeavesTheLedgerAlone: bench --store on Redis runs
// under its own key prefix and empties it afterwards; the real prefix's
// keys and totals are as they were, and of the run only the reset's two
// time markers remain (they expire within three days).
func TestBenchStoreOnRedisLeavesTheLedgerAlone(t *testing.T) {
	srv := redistest.Server(t)
	dir := t.TempDir()
	env := map[string]string{"TOKENLEDGER_STORE": "redis", "REDIS_URL": srv.URL(), "TOKENLEDGER_KEY_PREFIX": "tl",
		"TOKENLEDGER_FILE": filepath.Join(dir, "token_usage.json")}
	if r := cli(t, env, "", "log", "--model", "gpt-4o", "--prompt", "10", "--user", "ada"); r.code != 0 {
		t.Fatalf("log: exit %d\n%s", r.code, r.stderr)
	}
	before := countKeys(t, srv.Addr(), "tl:*")

	r := cli(t, env, "", "bench", "--store", "-n", "400", "-c", "4", "--batch", "4", "--quiet")
	if r.code != 0 || !strings.Contains(r.stdout, "verify      ok:") || !strings.Contains(r.stdout, "under bench's own key prefix tl-bench-") {
		t.Fatalf("bench --store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after := countKeys(t, srv.Addr(), "tl:*"); after != before {
		t.Errorf("the real prefix had %s keys before bench and %s after", before, after)
	}
	if left := countKeys(t, srv.Addr(), "tl-bench-*"); left != "2" {
		t.Errorf("bench left %s keys under its prefix, want only the reset's 2 time markers", left)
	}
	if n := countKeys(t, srv.Addr(), "tl-bench-*:mark:reset*"); n != "2" {
		t.Errorf("the keys bench left are not its reset markers (%s of them are)", n)
	}
	// The longest time to live of those keys: at most three days (-1: one
	// never expires).
	ttl, err := redistest.Command(srv.Addr(), "EVAL", `local m = 0
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
  local t = redis.call('TTL', k)
  if t < 0 then return -1 end
  if t > m then m = t end
end
return m`, "0", "tl-bench-*")
	if secs, _ := strconv.Atoi(strings.TrimPrefix(ttl, ":")); err != nil || secs <= 0 || secs > 3*24*3600 {
		t.Errorf("the left markers' longest TTL is %q (%v), want at most 3 days (259200 s)", ttl, err)
	}
	r = cli(t, env, "", "report", "--days", "1", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"totalRequests": 1,`) {
		t.Errorf("report after bench: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("bench left files in %s: %v", dir, left)
	}
}
