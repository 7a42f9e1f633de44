package redis_test

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
)

// open opens a store on opts (quiet unless opts.Logger is set) and closes
// it when t ends.
func open(t testing.TB, opts redis.RedisOptions) *redis.Store {
	t.Helper()
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = redistest.Prefix()
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := redis.OpenRedis(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// raw returns a plain go-redis client on addr for inspecting the server.
func raw(t *testing.T, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawCluster returns a plain go-redis cluster client on the seeds.
func rawCluster(t *testing.T, addrs []string) *goredis.ClusterClient {
	t.Helper()
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, Protocol: 2})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// event returns a valid event at ts.
func event(id string, ts time.Time, model, user, session string, p, c int64) tokenledger.Event {
	return tokenledger.Event{ID: id, Timestamp: ts, Model: model, UserID: user, SessionID: session,
		PromptTokens: p, CompletionTokens: c, TotalTokens: p + c}
}

// noon is noon UTC of the real current day: events then stay well inside
// the retention window and their keys do not expire during the test.
func noon() time.Time { return time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour) }

// scanKeys returns every key matching pattern on c.
func scanKeys(t testing.TB, c goredis.Cmdable, pattern string) []string {
	t.Helper()
	var out []string
	var cursor uint64
	for {
		keys, next, err := c.Scan(context.Background(), cursor, pattern, 1000).Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, keys...)
		if next == 0 {
			return out
		}
		cursor = next
	}
}

// tripCounter counts request round trips per server address: a round trip
// starts with the first write on a connection after it last read (or was
// opened). Each trip remembers the start of what it sent.
type tripCounter struct {
	mu    sync.Mutex
	trips map[string][]string // addr → first bytes of each trip's request
}

func newTripCounter() *tripCounter { return &tripCounter{trips: map[string][]string{}} }

// dial is an Options.Dialer that wraps connections to count trips.
func (tc *tripCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &tripConn{Conn: c, tc: tc, addr: addr, idle: true}, nil
}

// reset forgets the trips so far.
func (tc *tripCounter) reset() {
	tc.mu.Lock()
	tc.trips = map[string][]string{}
	tc.mu.Unlock()
}

// count returns the trips per address whose request mentions marker.
func (tc *tripCounter) count(marker string) map[string]int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	out := map[string]int{}
	for addr, reqs := range tc.trips {
		for _, r := range reqs {
			if strings.Contains(r, marker) {
				out[addr]++
			}
		}
	}
	return out
}

// commands returns how many name commands the trips so far sent, as far
// as their first 4 KiB show.
func (tc *tripCounter) commands(name string) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	n := 0
	for _, reqs := range tc.trips {
		for _, r := range reqs {
			n += strings.Count(r, "\r\n"+strings.ToUpper(name)+"\r\n")
		}
	}
	return n
}

// total sums a per-address count.
func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

type tripConn struct {
	net.Conn
	tc   *tripCounter
	addr string
	mu   sync.Mutex
	idle bool // true until the next write starts a trip
	head []byte
	trip int // index of the current trip in tc.trips[addr]
}

func (c *tripConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.tc.mu.Lock()
	if c.idle {
		c.idle = false
		c.head = c.head[:0]
		c.tc.trips[c.addr] = append(c.tc.trips[c.addr], "")
		c.trip = len(c.tc.trips[c.addr]) - 1
	}
	if len(c.head) < 4096 {
		c.head = append(c.head, p[:min(len(p), 4096-len(c.head))]...)
		c.tc.trips[c.addr][c.trip] = string(bytes.ToUpper(c.head))
	}
	c.tc.mu.Unlock()
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tripConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.idle = true
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// commandCalls returns cmdstat_<name>'s calls from INFO commandstats.
func commandCalls(t *testing.T, c goredis.Cmdable, name string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+name+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}
