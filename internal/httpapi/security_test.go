package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	apiKey  = "api-key-0123456789abcdef"
	readKey = "read-key-0123456789abcdef"
)

// TestKeys checks every method of /api/tokens against every kind of
// credential, for every combination of configured keys.
func TestKeys(t *testing.T) {
	creds := []struct {
		name   string
		header []string
	}{
		{"none", nil},
		{"basic", []string{"Authorization", "Basic dXNlcjpwYXNz"}},
		{"empty bearer", []string{"Authorization", "Bearer  "}},
		{"api key", []string{"Authorization", "Bearer " + apiKey}},
		{"api key in X-API-Key", []string{"X-API-Key", apiKey}},
		{"read key", []string{"Authorization", "bearer " + readKey}},
		{"read key in X-API-Key", []string{"X-API-Key", readKey}},
		{"admin key", []string{"Authorization", "Bearer " + adminKey}},
		{"admin key in X-API-Key", []string{"X-API-Key", adminKey}},
		{"wrong key", []string{"Authorization", "Bearer wrong-key-0123456789abcdef"}},
		{"prefix of the api key", []string{"Authorization", "Bearer " + apiKey[:len(apiKey)-1]}},
		{"wrong key in X-API-Key", []string{"X-API-Key", "wrong-key-0123456789abcdef"}},
	}
	type keys struct{ api, read, admin string }
	for _, k := range []keys{
		{}, {api: apiKey}, {read: readKey}, {api: apiKey, read: readKey},
		{api: apiKey, read: readKey, admin: adminKey}, {admin: adminKey},
	} {
		name := fmt.Sprintf("api=%v,read=%v,admin=%v", k.api != "", k.read != "", k.admin != "")
		t.Run(name, func(t *testing.T) {
			for _, c := range creds {
				key := ""
				if len(c.header) == 2 {
					key = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(c.header[1], "Bearer "), "bearer "))
					if strings.HasPrefix(c.header[1], "Basic") {
						key = ""
					}
				}
				// want returns the status a request with key gets when keys
				// are accepted (none configured means open).
				want := func(accepted ...string) int {
					if len(accepted) == 0 {
						return 200
					}
					if key == "" {
						return 401
					}
					for _, a := range accepted {
						if a == key {
							return 200
						}
					}
					return 403
				}
				nonEmpty := func(ks ...string) []string {
					var out []string
					for _, k := range ks {
						if k != "" {
							out = append(out, k)
						}
					}
					return out
				}
				wantPost := want(nonEmpty(k.api)...)
				wantGet := 200
				if k.read != "" {
					wantGet = want(nonEmpty(k.read, k.api)...)
				}
				wantDelete := 403 // disabled
				if k.admin != "" {
					wantDelete = want(k.admin)
				}

				f := newFixture(t, func(d *Deps) { d.APIKey, d.ReadKey, d.AdminKey = k.api, k.read, k.admin })
				before := f.state()
				post := f.do("POST", "/api/tokens", "application/json", `{"model":"m","promptTokens":5}`, c.header...)
				if post.status != wantPost {
					t.Errorf("%s: POST = %d %s, want %d", c.name, post.status, post.raw, wantPost)
				}
				if wantPost != 200 && f.state() != before {
					t.Errorf("%s: a refused POST stored something", c.name)
				}
				get := f.do("GET", "/api/tokens?action=all", "", "", c.header...)
				if get.status != wantGet {
					t.Errorf("%s: GET = %d %s, want %d", c.name, get.status, get.raw, wantGet)
				}
				head := f.serve(withHeaders(httptest.NewRequest("HEAD", "/api/tokens", nil), c.header...))
				if head.status != wantGet {
					t.Errorf("%s: HEAD = %d, want %d", c.name, head.status, wantGet)
				}
				del := f.do("DELETE", "/api/tokens", "", "", c.header...)
				if del.status != wantDelete {
					t.Errorf("%s: DELETE = %d %s, want %d", c.name, del.status, del.raw, wantDelete)
				}
				for _, a := range []answer{post, get, del} {
					switch a.status {
					case 401:
						if a.header.Get("WWW-Authenticate") != `Bearer realm="tokenledger"` {
							t.Errorf("%s: 401 without WWW-Authenticate: %v", c.name, a.header)
						}
						fallthrough
					case 403:
						msg, _ := a.body["error"].(string)
						if msg == "" || strings.Count(msg, ". ") > 0 || !strings.Contains(msg, "key") {
							t.Errorf("%s: refusal is not one sentence about the key: %q", c.name, msg)
						}
					}
				}
				// The answer and the log never repeat a key, right or wrong.
				for _, a := range []answer{post, get, del} {
					if key != "" && strings.Contains(a.raw+fmt.Sprint(a.header), key) {
						t.Errorf("%s: the answer repeats the key: %s", c.name, a.raw)
					}
				}
				if key != "" && strings.Contains(f.logs.String(), key) {
					t.Errorf("%s: the log repeats the key:\n%s", c.name, f.logs)
				}
			}
		})
	}
}

// withHeaders sets header (name, value, …) on r.
func withHeaders(r *http.Request, header ...string) *http.Request {
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

func TestKeyMessages(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.APIKey, d.ReadKey = apiKey, readKey })
	tests := []struct {
		method, target, auth string
		status               int
		msg                  string
	}{
		{"POST", "/api/tokens", "", 401, "Logging usage needs the API key: send it as Authorization: Bearer <TOKENLEDGER_API_KEY> (or in X-API-Key)"},
		{"POST", "/api/tokens", "Bearer " + readKey, 403, "The API key is wrong; nothing was stored"},
		{"GET", "/api/tokens", "", 401, "Reading usage needs a key: send TOKENLEDGER_READ_KEY or TOKENLEDGER_API_KEY as Authorization: Bearer <key> (or in X-API-Key)"},
		{"GET", "/api/tokens", "Bearer nope-nope-nope-nope", 403, "The key is wrong; reading usage needs TOKENLEDGER_READ_KEY or TOKENLEDGER_API_KEY"},
	}
	for _, tc := range tests {
		ct := ""
		if tc.method == "POST" {
			ct = "application/json"
		}
		a := f.do(tc.method, tc.target, ct, `{"model":"m"}`, "Authorization", tc.auth)
		if a.status != tc.status || a.body["error"] != tc.msg {
			t.Errorf("%s %s with %q = %d %q, want %d %q", tc.method, tc.target, tc.auth, a.status, a.body["error"], tc.status, tc.msg)
		}
	}
	// Auth comes before the body: an unauthenticated client learns
	// nothing about the content type or the body rules.
	if a := f.do("POST", "/api/tokens", "text/plain", "x"); a.status != 401 {
		t.Errorf("POST without key and with a bad body = %d, want 401", a.status)
	}
}

// TestOpenEndpoints: with every key set, the health and test endpoints
// stay open, and none of them shows a key.
func TestOpenEndpoints(t *testing.T) {
	secrets := []string{apiKey, readKey, adminKey}
	f := newFixture(t, func(d *Deps) { d.APIKey, d.ReadKey, d.Secrets = apiKey, readKey, secrets })
	for _, target := range []string{"/healthz", "/readyz", "/api/test"} {
		a := f.do("GET", target, "", "")
		if a.status != 200 {
			t.Errorf("GET %s = %d %s, want 200 without a key", target, a.status, a.raw)
		}
		for _, s := range secrets {
			if strings.Contains(a.raw+fmt.Sprint(a.header), s) {
				t.Errorf("GET %s shows a key: %s", target, a.raw)
			}
		}
	}
}

func TestLimiter(t *testing.T) {
	clock := time.Unix(1_000_000, 0)
	now := func() time.Time { return clock }
	l := newLimiter(2, 3, 100, now) // 2 per second, bursts of 3
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: ok=%v wait=%v, want refused with 500ms", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("another client is limited by the first one's requests")
	}
	clock = clock.Add(499 * time.Millisecond)
	if ok, _ := l.allow("a"); ok {
		t.Fatal("allowed before a token was earned")
	}
	clock = clock.Add(time.Millisecond)
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("refused after a token was earned")
	}
	clock = clock.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("after an hour, request %d of a new burst refused: the bucket must refill to the burst", i+1)
		}
	}
	if ok, _ := l.allow("a"); ok {
		t.Fatal("the bucket refilled beyond the burst")
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	clock := time.Unix(1_000_000, 0)
	l := newLimiter(1, 5, 1000, func() time.Time { return clock })
	for i := range 100_000 {
		l.allow("client-" + strconv.Itoa(i))
		if n := l.size(); n > 1000 {
			t.Fatalf("after %d clients the limiter remembers %d, more than its bound 1000", i+1, n)
		}
	}
	// Clients that keep sending are limited even while others churn: a
	// client that is over its limit is forgotten only when the map is
	// full of other clients that are over their limit too.
	l = newLimiter(1, 2, 1000, func() time.Time { return clock })
	l.allow("hot")
	l.allow("hot")
	for i := range 5000 {
		clock = clock.Add(10 * time.Millisecond) // others refill quickly: 2 tokens in 2 s
		l.allow("cold-" + strconv.Itoa(i))
	}
	if l.size() > 1000 {
		t.Fatalf("limiter remembers %d clients", l.size())
	}
}

func TestRateLimitMiddleware(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.RateLimit, d.RateBurst = 0.001, 2 })
	for i := range 2 {
		if a := f.get(""); a.status != 200 {
			t.Fatalf("request %d: %d", i+1, a.status)
		}
	}
	a := f.get("")
	if a.status != 429 {
		t.Fatalf("3rd request = %d, want 429", a.status)
	}
	if got := a.header.Get("Retry-After"); got != "1000" {
		t.Errorf("Retry-After = %q, want 1000 (one request per 1000 s)", got)
	}
	if a.body["error"] != "Too many requests from this client; try again in 1000 s" {
		t.Errorf("error = %q", a.body["error"])
	}
	// Every endpoint but /healthz counts, and a POST is refused before it
	// stores anything.
	before := f.state()
	if a := f.post(`{"model":"m","promptTokens":1}`); a.status != 429 {
		t.Errorf("POST = %d, want 429", a.status)
	}
	if f.state() != before {
		t.Error("a refused POST stored something")
	}
	if a := f.do("GET", "/api/test", "", ""); a.status != 429 {
		t.Errorf("GET /api/test = %d, want 429", a.status)
	}
	for range 5 {
		if a := f.do("GET", "/healthz", "", ""); a.status != 200 {
			t.Errorf("GET /healthz = %d, want 200: probes are never limited", a.status)
		}
	}
	// Another client has its own bucket.
	req := httptest.NewRequest("GET", "/api/tokens", nil)
	req.RemoteAddr = "198.51.100.7:5555"
	if a := f.serve(req); a.status != 200 {
		t.Errorf("another client = %d, want 200", a.status)
	}
}

func TestRateLimitOffByDefault(t *testing.T) {
	f := newFixture(t)
	for i := range 200 {
		if a := f.do("GET", "/api/tokens", "", ""); a.status != 200 {
			t.Fatalf("request %d = %d without a rate limit", i+1, a.status)
		}
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		remote string
		xff    []string
		trust  bool
		want   string
	}{
		{"192.0.2.1:1234", nil, false, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"203.0.113.9"}, false, "192.0.2.1"}, // not trusted: ignored
		{"192.0.2.1:1234", []string{"203.0.113.9"}, true, "203.0.113.9"},
		{"192.0.2.1:1234", []string{"6.6.6.6, 203.0.113.9"}, true, "203.0.113.9"},   // the client wrote 6.6.6.6
		{"192.0.2.1:1234", []string{"6.6.6.6", "203.0.113.9"}, true, "203.0.113.9"}, // last header, last entry
		{"192.0.2.1:1234", []string{"203.0.113.9, not-an-ip"}, true, "192.0.2.1"},   // garbage: the connection
		{"[2001:db8:1:2:3:4:5:6]:443", nil, false, "2001:db8:1:2::/64"},             // a /64 is one client
		{"[2001:db8:1:2:ffff::1]:443", nil, false, "2001:db8:1:2::/64"},             //
		{"[::ffff:192.0.2.1]:80", nil, false, "192.0.2.1"},                          // IPv4-mapped
		{"@", nil, false, "@"}, // a unix socket
		{"192.0.2.1:1234", []string{"2001:db8:9:9::1"}, true, "2001:db8:9:9::/64"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientKey(r, tc.trust); got != tc.want {
			t.Errorf("clientKey(%s, %q, trust=%v) = %q, want %q", tc.remote, tc.xff, tc.trust, got, tc.want)
		}
	}
}

func TestRateLimitConcurrent(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.RateLimit, d.RateBurst = 0.001, 50 })
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 8 {
		wg.Go(func() {
			for range 20 {
				rec := httptest.NewRecorder()
				f.h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/tokens", nil))
				mu.Lock()
				codes[rec.Code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[200] != 50 || codes[429] != 110 {
		t.Errorf("codes = %v, want exactly the burst (50) allowed and 110 refused", codes)
	}
}

// TestErrorsEchoLittle: whatever the body, an error answer repeats at
// most a few hundred bytes of it (an unknown or repeated key may be as
// long as the body).
func TestErrorsEchoLittle(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("k", 100_000)
	for _, body := range []string{
		`{"` + long + `":1}`,
		`{"model":"m","` + long + `":1,"` + long + `":2}`,
		`[{"model":"m"},{"` + long + `":1}]`,
		`{"model":"` + long + `"}`,
		`{"model":"m","timestamp":"` + long + `"}`,
		`{"model":"m","costUsd":1` + strings.Repeat("0", 100_000) + `}`,
		`{"model":"m","metadata":{"a":"` + long + `"}}`,
	} {
		a := f.post(body)
		if a.status != 400 {
			t.Errorf("status %d for a %d-byte body", a.status, len(body))
		}
		if len(a.raw) > 400 {
			t.Errorf("a %d-byte error answer: %.120s…", len(a.raw), a.raw)
		}
	}
	for _, q := range []string{"?action=" + long, "?action=date&date=" + long, "?action=history&days=" + long, "?" + long + "=1&action=x"} {
		if a := f.get(q); len(a.raw) > 400 {
			t.Errorf("GET %.40s…: a %d-byte answer", q, len(a.raw))
		}
	}
	if a := f.do("GET", "/"+long, "", ""); len(a.raw) > 400 {
		t.Errorf("404: a %d-byte answer", len(a.raw))
	}
}

// endlessResetStore is a store whose Reset runs until its context ends,
// like a database that answers SCAN so that the scan never finishes.
type endlessResetStore struct{ *brokenStore }

func (e endlessResetStore) Reset(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestResetIsBounded: a reset that never finishes is cut off (503)
// instead of holding the request forever.
func TestResetIsBounded(t *testing.T) {
	old := resetTimeout
	resetTimeout = 50 * time.Millisecond
	t.Cleanup(func() { resetTimeout = old })
	f := newFixtureOn(t, endlessResetStore{newBroken(t, nil)})
	done := make(chan answer, 1)
	go func() { done <- f.do("DELETE", "/api/tokens", "", "", "Authorization", "Bearer "+adminKey) }()
	select {
	case a := <-done:
		if a.status != 503 {
			t.Errorf("endless reset = %d %s, want 503", a.status, a.raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DELETE did not return: a reset that never ends holds the request")
	}
}

// TestCredentialPrecedence: a Bearer key wins over X-API-Key; an
// Authorization header of another scheme (a proxy's Basic) is ignored, so
// X-API-Key still counts (docs/api.md, "Keys").
func TestCredentialPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
		want   string
	}{
		{"bearer and X-API-Key", []string{"Authorization", "Bearer " + apiKey, "X-API-Key", readKey}, apiKey},
		{"basic and X-API-Key", []string{"Authorization", "Basic dXNlcjpwYXNz", "X-API-Key", readKey}, readKey},
		{"basic alone", []string{"Authorization", "Basic dXNlcjpwYXNz"}, ""},
		{"empty bearer and X-API-Key", []string{"Authorization", "Bearer ", "X-API-Key", readKey}, readKey},
	} {
		r := withHeaders(httptest.NewRequest("GET", "/api/tokens", nil), tc.header...)
		if got := credential(r); got != tc.want {
			t.Errorf("%s: credential = %q, want %q", tc.name, got, tc.want)
		}
	}
	f := newFixture(t, func(d *Deps) { d.APIKey = apiKey })
	if a := f.do("POST", "/api/tokens", "application/json", `{"model":"m"}`, "Authorization", "Bearer wrong-key-0123456789abcdef", "X-API-Key", apiKey); a.status != 403 {
		t.Errorf("a wrong Bearer key with the right X-API-Key = %d, want 403 (the Bearer key wins)", a.status)
	}
	if a := f.do("POST", "/api/tokens", "application/json", `{"model":"m"}`, "Authorization", "Basic dXNlcjpwYXNz", "X-API-Key", apiKey); a.status != 200 {
		t.Errorf("Basic with the right X-API-Key = %d, want 200", a.status)
	}
}
