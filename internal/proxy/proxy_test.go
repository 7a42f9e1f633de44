package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/capture"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/proxy"
	"github.com/tokenledger/tokenledger/internal/testkit/upstreamtest"
	"github.com/tokenledger/tokenledger/pricing"
	"github.com/tokenledger/tokenledger/store/memstore"
)

var quiet = slog.New(slog.DiscardHandler)

// harness is serve's API with the proxy on, its three built-in
// upstreams all pointing at one stand-in, and the events it records.
type harness struct {
	up    *upstreamtest.Server
	url   string
	proxy *proxy.Proxy
	svc   *tokenledger.Service

	mu     sync.Mutex
	events []tokenledger.Event
}

func newHarness(t testing.TB, apiKey string) *harness {
	t.Helper()
	h := &harness{up: upstreamtest.Start()}
	t.Cleanup(h.up.Close)
	prices, err := pricing.Load("")
	if err != nil {
		t.Fatal(err)
	}
	h.svc, err = tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Prices: prices, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	over := map[string]string{"openai": h.up.URL, "anthropic": h.up.URL, "gemini": h.up.URL}
	ups, err := proxy.Upstreams(over, map[string]string{"local": h.up.URL + "/compat"})
	if err != nil {
		t.Fatal(err)
	}
	h.proxy = proxy.New(proxy.Options{
		Upstreams: ups,
		Record: func(ctx context.Context, e tokenledger.Event) error {
			events := []tokenledger.Event{e}
			_, err := h.svc.Log(ctx, events)
			if err == nil {
				h.mu.Lock()
				h.events = append(h.events, events[0])
				h.mu.Unlock()
			}
			return err
		},
		WriteError: httpapi.WriteError,
		Logger:     quiet,
	})
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Service: h.svc, Proxy: h.proxy, APIKey: apiKey, Logger: quiet}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// recorded waits until n events are recorded and returns them.
func (h *harness) recorded(t testing.TB, n int) []tokenledger.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		got := append([]tokenledger.Event(nil), h.events...)
		h.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("%d events recorded, want %d: %+v", len(got), n, got)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// send posts body to url with headers and returns the answer, read whole.
func send(t testing.TB, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// calls are one of each shape the proxy reads, by path and body.
var calls = []struct {
	name, path, body string
	kind             capture.Kind
}{
	{"chat", "/openai/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"user":"u-body"}`, capture.OpenAI},
	{"chat streamed with usage", "/openai/v1/chat/completions", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`, capture.OpenAI},
	{"responses", "/openai/v1/responses", `{"model":"o4-mini","input":"hi"}`, capture.OpenAI},
	{"responses streamed", "/openai/v1/responses", `{"model":"o4-mini","input":"hi","stream":true}`, capture.OpenAI},
	{"messages", "/anthropic/v1/messages", `{"model":"claude-sonnet-4-20250514","max_tokens":64,"messages":[],"metadata":{"user_id":"u-anthropic"}}`, capture.Anthropic},
	{"messages streamed", "/anthropic/v1/messages", `{"model":"claude-sonnet-4-20250514","max_tokens":64,"messages":[],"stream":true}`, capture.Anthropic},
	{"gemini", "/gemini/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[]}`, capture.Gemini},
	{"gemini streamed", "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", `{"contents":[]}`, capture.Gemini},
}

// TestEachShape sends each call directly and through the proxy: the
// client gets the same status, content type and bytes (ids aside, which
// differ per call), and the event recorded is the upstream's usage.
func TestEachShape(t *testing.T) {
	h := newHarness(t, "")
	for i, c := range calls {
		direct, want := send(t, h.up.URL+"/"+strings.SplitN(c.path, "/", 3)[2], c.body)
		res, got := send(t, h.url+"/proxy"+c.path, c.body, proxy.HeaderSession, "s-"+c.name)
		events := h.recorded(t, i+1)
		e := events[i]
		sent, ok := h.up.Sent()[e.ID]
		if !ok {
			t.Fatalf("%s: recorded id %q is not one the upstream sent", c.name, e.ID)
		}
		u := sent.Usage
		if e.Model != u.Model || e.PromptTokens != u.Prompt || e.CompletionTokens != u.Completion || e.CacheReadTokens != u.CacheRead ||
			e.CacheWriteTokens != u.CacheWrite || e.ReasoningTokens != u.Reasoning || e.TotalTokens != u.Prompt+u.Completion {
			t.Errorf("%s: recorded %+v, upstream sent %+v", c.name, e, u)
		}
		if e.SessionID != "s-"+c.name || e.UserID != sent.User || e.Provider != strings.Split(c.path, "/")[1] {
			t.Errorf("%s: user %q session %q provider %q", c.name, e.UserID, e.SessionID, e.Provider)
		}
		if !strings.Contains(string(e.Metadata), `"path":"/v1`) {
			t.Errorf("%s: metadata %s", c.name, e.Metadata)
		}
		if res.StatusCode != direct.StatusCode || res.Header.Get("Content-Type") != direct.Header.Get("Content-Type") {
			t.Errorf("%s: through the proxy %d %s, direct %d %s", c.name, res.StatusCode, res.Header.Get("Content-Type"), direct.StatusCode, direct.Header.Get("Content-Type"))
		}
		directID := idIn(want, e.ID)
		if strings.ReplaceAll(want, directID, e.ID) != got {
			t.Errorf("%s: the client got other bytes through the proxy:\n got  %q\n want %q", c.name, got, want)
		}
		if h.up.Last().Header.Get(proxy.HeaderSession) != "" {
			t.Errorf("%s: X-Tokenledger-Session reached the upstream", c.name)
		}
	}
	if e := h.recorded(t, len(calls))[0]; e.UserID != "u-body" || e.Pricing != tokenledger.PricedByTable || e.Cost == 0 {
		t.Errorf("chat: user %q, pricing %v, cost %v; want the body's user and a table price", e.UserID, e.Pricing, e.Cost)
	}
}

// idIn returns the id in body that has the same prefix as like.
func idIn(body, like string) string {
	prefix := strings.TrimRight(like, "0123456789")
	i := strings.Index(body, `"`+prefix+"0")
	if i < 0 {
		return like
	}
	i++
	j := i + len(prefix)
	for j < len(body) && body[j] >= '0' && body[j] <= '9' {
		j++
	}
	return body[i:j]
}
