package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/testkit"
)

const (
	testAPIKey   = "api-key-for-tests-0123456789"
	testReadKey  = "read-key-for-tests-0123456789"
	testAdminKey = "admin-key-for-tests-0123456789"
)

func TestOnlyLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:0": true, "[::1]:8080": true, "localhost:8080": true, "LOCALHOST:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "192.168.1.5:8080": false,
		"example.com:80": false, "my-host:8080": false, "[fe80::1%eth0]:80": false, "8080": false,
	} {
		if got := onlyLoopback(addr); got != want {
			t.Errorf("onlyLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestServeRefusesExposedAddressWithoutKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		from string
	}{
		{"--addr on every interface", map[string]string{}, []string{"--addr", "0.0.0.0:0"}, "0.0.0.0:0 (from --addr)"},
		{"PORT alone", map[string]string{"PORT": "0"}, nil, ":0 (from PORT)"},
		{"TOKENLEDGER_ADDR with a host name", map[string]string{"TOKENLEDGER_ADDR": "my-host:0"}, nil, "my-host:0 (from TOKENLEDGER_ADDR)"},
		{"a read key is not enough", map[string]string{"PORT": "0", "TOKENLEDGER_READ_KEY": testReadKey}, nil, ":0 (from PORT)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["TOKENLEDGER_STORE"] = "memory"
			r := cli(t, tc.env, "", append([]string{"serve"}, tc.args...)...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			want := "tokenledger: serve: refusing to listen on " + tc.from + " without TOKENLEDGER_API_KEY, since anyone who reaches that address could log and read usage; set TOKENLEDGER_API_KEY (and TOKENLEDGER_READ_KEY), listen on 127.0.0.1, or pass --insecure\n"
			if r.stderr != want {
				t.Errorf("stderr =\n%q\nwant\n%q", r.stderr, want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q: nothing may be served", r.stdout)
			}
		})
	}
}

// startExposed runs serve with extra arguments on an address that is not
// loopback-only and returns a URL on 127.0.0.1 for it.
func startExposed(t *testing.T, env map[string]string, args ...string) (url string, stderr *testkit.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &listenWatcher{url: make(chan string, 1)}
	stderr = &testkit.SyncBuffer{}
	go func() {
		done <- run(ctx, append([]string{"tokenledger", "serve"}, args...), envOf(env), strings.NewReader(""), out, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	select {
	case u := <-out.url:
		_, port, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		url = "http://127.0.0.1:" + port
	case err := <-done:
		done <- err
		t.Fatalf("serve ended before listening: %v\n%s", err, stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not listen in 10s\n%s", stderr)
	}
	waitHealthy(t, url)
	return url, stderr
}

func TestServeExposedWithInsecure(t *testing.T) {
	url, stderr := startExposed(t, map[string]string{"TOKENLEDGER_STORE": "memory", "PORT": "0"}, "--insecure")
	if status, body := call(t, "POST", url+"/api/tokens", `{"model":"m","promptTokens":1}`); status != 200 {
		t.Errorf("POST = %d %v", status, body)
	}
	if !strings.Contains(stderr.String(), "without TOKENLEDGER_API_KEY (--insecure): anyone who reaches it can log usage") {
		t.Errorf("no warning about the open server:\n%s", stderr)
	}
}

// authCall makes one request with a key and returns the status.
func authCall(t *testing.T, method, url, body, key string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeWithKeys(t *testing.T) {
	env := map[string]string{
		"TOKENLEDGER_STORE": "memory", "PORT": "0", "TOKENLEDGER_API_KEY": testAPIKey,
		"TOKENLEDGER_READ_KEY": testReadKey, "TOKENLEDGER_ADMIN_KEY": testAdminKey,
		"TOKENLEDGER_RATE_LIMIT": "1000", "TOKENLEDGER_RATE_BURST": "1000",
	}
	url, stderr := startExposed(t, env) // every interface, no --insecure: the API key allows it
	ev := `{"model":"m","promptTokens":1}`
	for _, tc := range []struct {
		method, path, body, key string
		want                    int
	}{
		{"POST", "/api/tokens", ev, "", 401},
		{"POST", "/api/tokens", ev, testReadKey, 403},
		{"POST", "/api/tokens", ev, testAPIKey, 200},
		{"GET", "/api/tokens", "", "", 401},
		{"GET", "/api/tokens", "", testAdminKey, 403},
		{"GET", "/api/tokens", "", testReadKey, 200},
		{"GET", "/api/tokens", "", testAPIKey, 200},
		{"DELETE", "/api/tokens", "", testAPIKey, 403},
		{"DELETE", "/api/tokens", "", testAdminKey, 200},
		{"GET", "/api/test", "", "", 200},
		{"GET", "/readyz", "", "", 200},
	} {
		if got := authCall(t, tc.method, url+tc.path, tc.body, tc.key); got != tc.want {
			t.Errorf("%s %s with key %q = %d, want %d", tc.method, tc.path, tc.key, got, tc.want)
		}
	}
	want := "Access: logging needs TOKENLEDGER_API_KEY; reading needs TOKENLEDGER_READ_KEY or TOKENLEDGER_API_KEY; reset needs TOKENLEDGER_ADMIN_KEY; at most 1000 requests per second per client (bursts of 1000)"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("the startup log does not say who may do what:\n%s", stderr)
	}
}

func TestServeWarnsWhenReadsAreOpen(t *testing.T) {
	_, stderr := startExposed(t, map[string]string{"TOKENLEDGER_STORE": "memory", "TOKENLEDGER_API_KEY": testAPIKey}, "--addr", "0.0.0.0:0")
	if !strings.Contains(stderr.String(), "without TOKENLEDGER_READ_KEY: anyone who reaches it can read usage") {
		t.Errorf("no warning about open reads:\n%s", stderr)
	}
}

func TestServeRateLimit(t *testing.T) {
	s := startServer(t, map[string]string{"TOKENLEDGER_STORE": "memory", "TOKENLEDGER_RATE_LIMIT": "0.01", "TOKENLEDGER_RATE_BURST": "3"})
	codes := []int{}
	for range 5 {
		resp, err := http.Get(s.url + "/api/tokens")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "100" {
			t.Errorf("Retry-After = %q, want 100", resp.Header.Get("Retry-After"))
		}
	}
	// waitHealthy's /healthz calls before were not counted.
	if want := []int{200, 200, 200, 429, 429}; !slices.Equal(codes, want) {
		t.Errorf("statuses = %v, want %v", codes, want)
	}
}

func TestDefaultTimeouts(t *testing.T) {
	d := defaultTimeouts
	if d.readHeader <= 0 || d.readHeader > 10*time.Second || d.read < d.readHeader || d.write < d.read || d.idle <= 0 || d.idle > 5*time.Minute {
		t.Errorf("default timeouts %+v: want every one set, headers within 10 s, read ≥ headers, write ≥ read, idle ≤ 5 min", d)
	}
	srv := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler), d)
	if srv.ReadHeaderTimeout != d.readHeader || srv.ReadTimeout != d.read || srv.WriteTimeout != d.write || srv.IdleTimeout != d.idle || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("server %+v does not use %+v", srv, d)
	}
}

// slowServer serves newHTTPServer with short timeouts on 127.0.0.1.
func slowServer(t *testing.T, to httpTimeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "body not read", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	srv := newHTTPServer(h, slog.New(slog.DiscardHandler), to)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// trickle writes msg one byte per gap until the server closes the
// connection or msg is sent; it returns how long the server let it write.
func trickle(t *testing.T, conn net.Conn, msg string, gap time.Duration) (time.Duration, bool) {
	t.Helper()
	closed := make(chan struct{})
	go func() { // the server closing shows up as EOF (or a reset) on read
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	start := time.Now()
	for i := 0; i < len(msg); i++ {
		select {
		case <-closed:
			return time.Since(start), true
		case <-time.After(gap):
		}
		if _, err := conn.Write([]byte{msg[i]}); err != nil {
			return time.Since(start), true
		}
	}
	select {
	case <-closed:
		return time.Since(start), true
	case <-time.After(time.Second):
		return time.Since(start), false
	}
}

func TestSlowlorisHeadersAreCutOff(t *testing.T) {
	to := httpTimeouts{readHeader: 300 * time.Millisecond, read: time.Second, write: 2 * time.Second, idle: time.Second}
	addr := slowServer(t, to)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 60 bytes of headers, one every 50 ms: 3 s if the server waited.
	took, cut := trickle(t, conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 50*time.Millisecond)
	if !cut {
		t.Fatalf("the server waited %v for headers sent byte by byte; ReadHeaderTimeout is %v", took, to.readHeader)
	}
	if took > to.readHeader+time.Second {
		t.Errorf("cut off after %v, want about %v", took, to.readHeader)
	}
}

func TestSlowBodyIsCutOff(t *testing.T) {
	to := httpTimeouts{readHeader: 300 * time.Millisecond, read: 800 * time.Millisecond, write: 2 * time.Second, idle: time.Second}
	addr := slowServer(t, to)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	took, cut := trickle(t, conn, strings.Repeat("a", 100), 50*time.Millisecond) // 5 s if the server waited
	if !cut {
		t.Fatalf("the server waited %v for a body sent byte by byte; ReadTimeout is %v", took, to.read)
	}
	if took > to.read+time.Second {
		t.Errorf("cut off after %v, want about %v", took, to.read)
	}
}

func TestIdleConnectionIsClosed(t *testing.T) {
	to := httpTimeouts{readHeader: 300 * time.Millisecond, read: time.Second, write: time.Second, idle: 300 * time.Millisecond}
	addr := slowServer(t, to)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = br.ReadByte()
	if !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("idle connection: read = %v, want the server to close it", err)
	}
	if took := time.Since(start); took > to.idle+time.Second {
		t.Errorf("idle connection closed after %v, want about %v", took, to.idle)
	}
}

func isReset(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestDescribeAccess(t *testing.T) {
	c := config.Config{}
	if got, want := describeAccess(c), "Access: logging is open to anyone who reaches the server; reading is open; reset is disabled; no rate limit"; got != want {
		t.Errorf("describeAccess = %q, want %q", got, want)
	}
}
