package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/testkit/upstreamtest"
)

// lockedBuffer is a log sink many goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProviderKeysStayOut runs serve's wiring (internal/app: the file
// store, the metrics, the proxy) with every log line kept at debug level
// and not redacted, and sends calls that carry a provider key in each
// place one goes (Authorization, x-api-key, x-goog-api-key, ?key=)
// through every path of the proxy: answered, streamed, usage injected,
// upstream 429 and 500, a malformed stream, an upstream that drops the
// connection, an unreachable upstream, an unknown one, a refused path and
// a client that leaves mid-stream. The keys reach the upstream, and
// nothing else: no log line, no answer tokenledger wrote, /metrics, the
// reports, nor any file of the store.
func TestProviderKeysStayOut(t *testing.T) {
	keys := []string{"sk-PROVIDERKEY-bearer-0001", "PROVIDERKEY-anthropic-0002", "PROVIDERKEY-goog-0003", "PROVIDERKEY-query-0004"}
	const marker = "PROVIDERKEY"
	up := upstreamtest.Start()
	defer up.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()

	dir := t.TempDir()
	vars := map[string]string{
		"TOKENLEDGER_STORE": "file", "TOKENLEDGER_FILE": filepath.Join(dir, "usage.json"),
		"TOKENLEDGER_PROXY": "1", "TOKENLEDGER_UPSTREAM_OPENAI": up.URL, "TOKENLEDGER_UPSTREAM_ANTHROPIC": up.URL,
		"TOKENLEDGER_UPSTREAM_GEMINI": up.URL, "TOKENLEDGER_UPSTREAMS": "dead=" + dead,
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.Open(context.Background(), cfg, app.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	var answers strings.Builder // everything tokenledger answered
	call := func(path, body string, headers ...string) {
		t.Helper()
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path+sep+"key="+keys[3], strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+keys[0])
		req.Header.Set("x-api-key", keys[1])
		req.Header.Set("x-goog-api-key", keys[2])
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(res.Body) // a dropped upstream cuts this short
		res.Body.Close()
		if res.StatusCode >= 400 || bytes.Contains(b, []byte(`"error"`)) { // what tokenledger or the stand-in refused
			answers.WriteString(res.Status + " " + string(b) + "\n")
		}
		for k, v := range res.Header {
			answers.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	const chat = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	call("/proxy/openai/v1/chat/completions", chat)
	call("/proxy/openai/v1/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[]}`)
	call("/proxy/anthropic/v1/messages", `{"model":"claude-sonnet-4-20250514","max_tokens":9,"messages":[],"stream":true}`)
	call("/proxy/gemini/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[]}`)
	call("/proxy/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", `{"contents":[]}`, "X-Fake", "malformed")
	call("/proxy/openai/v1/chat/completions", chat, "X-Fake", "429")
	call("/proxy/openai/v1/chat/completions", chat, "X-Fake", "500")
	call("/proxy/anthropic/v1/messages", `{"model":"claude-sonnet-4-20250514","stream":true}`, "X-Fake", "cut")
	call("/proxy/openai/v1/no/such/endpoint", chat)
	call("/proxy/dead/v1/chat/completions", chat)
	call("/proxy/nosuch/v1/chat/completions", chat)
	call("/proxy/openai/v1/%252e%252e/x", chat)

	// A client that reads one line of a slow stream and goes.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/proxy/anthropic/v1/messages?key="+keys[3],
		strings.NewReader(`{"model":"claude-sonnet-4-20250514","max_tokens":9,"messages":[],"stream":true}`))
	req.Header.Set("x-api-key", keys[1])
	req.Header.Set("X-Fake", "slow")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(res.Body).ReadString('\n')
	cancel()
	res.Body.Close()

	// Six answers carry usage; wait until they are recorded.
	for deadline := time.Now().Add(10 * time.Second); a.Proxy.Recorded.Load() < 6; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls recorded, want 6", a.Proxy.Recorded.Load())
		}
	}
	for _, path := range []string{"/metrics", "/api/tokens?action=all", "/api/tokens?action=users&days=1", "/api/tokens?action=models&days=1", "/api/test"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
		}
		answers.WriteString(string(b))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var stored strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			stored.WriteString(p + "\n" + string(b))
		}
		return nil
	})

	// The checks must look at something: the keys reached the upstream,
	// and the logs, answers and store hold what the calls did.
	var sent strings.Builder
	for _, r := range up.Requests() {
		sent.WriteString(r.URI + " " + r.Header.Get("Authorization") + " " + r.Header.Get("x-api-key") + " " + r.Header.Get("x-goog-api-key") + "\n")
	}
	for _, k := range keys {
		if !strings.Contains(sent.String(), k) {
			t.Errorf("the upstream never got %s; the test sends it nowhere", k)
		}
	}
	for what, want := range map[string][]string{
		"logs":    {"proxy: upstream unreachable", "proxy: nothing recorded", "ReverseProxy read error", "stream events that could not be read", "msg=request", "/proxy/gemini/v1beta"},
		"answers": {"The upstream dead", "There is no upstream named", "may not have", "tokenledger_proxy_requests_total", "gpt-4o", "Rate limit reached"},
		"store":   {"gpt-4o", "claude-sonnet-4", "gemini-2.5"},
	} {
		text := map[string]string{"logs": logs.String(), "answers": answers.String(), "store": stored.String()}[what]
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("the %s do not show %q; the test did not exercise what it checks:\n%s", what, w, text[:min(len(text), 3000)])
			}
		}
		if i := strings.Index(text, marker); i >= 0 {
			t.Errorf("a provider key is in the %s: …%s…", what, text[max(0, i-200):min(len(text), i+60)])
		}
	}
}
