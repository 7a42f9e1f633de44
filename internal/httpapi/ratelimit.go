package httpapi

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxRateClients bounds the clients the rate limiter remembers at once
// (about 100 bytes each, so about 1 MB). When more are active, clients
// whose bucket has refilled are forgotten first (forgetting them changes
// nothing), then random ones (which lets them start over with a full
// bucket: the limit weakens for them, the memory stays bounded).
const maxRateClients = 10_000

// limiter is a token bucket per client: each client may send burst
// requests at once and rate requests per second after that.
type limiter struct {
	rate  float64
	burst float64
	max   int
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*bucket
}

// bucket is one client's tokens as of last.
type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, maxClients int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: maxClients, now: now, clients: map[string]*bucket{}}
}

// allow takes one token from client's bucket. When there is none, it
// returns false and how long until there is one.
func (l *limiter) allow(client string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= l.max {
			l.shrink(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.clients[client] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// refill adds the tokens earned since b.last, up to the burst.
func (l *limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
}

// shrink makes room in a full map: it forgets the clients whose bucket
// is full again (as if they were new), then, if that is not enough,
// random clients until the map is at 7/8 of its bound, so that the next
// max/8 new clients cost O(1) each.
func (l *limiter) shrink(now time.Time) {
	for k, b := range l.clients {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.clients, k)
		}
	}
	target := l.max - max(l.max/8, 1)
	for k := range l.clients { // map order is random
		if len(l.clients) <= target {
			break
		}
		delete(l.clients, k)
	}
}

// size returns how many clients are remembered.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// clientKey names the client of r for the rate limit: its IP address,
// IPv6 addresses by their /64 (one host usually has a whole /64, so a
// client could otherwise switch addresses at will). With trustForwarded,
// the last X-Forwarded-For entry is the address (the one the proxy in
// front appended); the rest of that header is whatever the client wrote.
func clientKey(r *http.Request, trustForwarded bool) string {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if trustForwarded {
		if v := r.Header.Values("X-Forwarded-For"); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			last = strings.TrimSpace(last)
			if net.ParseIP(last) != nil {
				addr = last
			}
		}
	}
	ip := net.ParseIP(addr)
	if ip == nil {
		return truncate(addr, 64)
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// rateLimit answers 429 with Retry-After to a client over its limit.
// GET /healthz is not limited: probes must never fail because of it.
func (s *server) rateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		ok, wait := s.limiter.allow(clientKey(r, s.TrustForwardedFor))
		if !ok {
			secs := int(math.Ceil(wait.Seconds()))
			secs = max(secs, 1)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("Too many requests from this client; try again in %d s", secs))
			return
		}
		next.ServeHTTP(w, r)
	})
}
