package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/proxy"
	"github.com/tokenledger/tokenledger/internal/testkit/upstreamtest"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// TestInjectedUsage: a streamed chat without include_usage is sent
// upstream asking for it, the usage is recorded, and the client never
// sees the usage chunk; its other fields and the stream's text are kept.
func TestInjectedUsage(t *testing.T) {
	h := newHarness(t, "")
	body := `{"model":"gpt-4o","stream":true,"stream_options":{"other":1},"messages":[{"role":"user","content":"hi"}]}`
	res, got := send(t, h.url+"/proxy/openai/v1/chat/completions", body)
	e := h.recorded(t, 1)[0]
	if u := h.up.Sent()[e.ID].Usage; e.PromptTokens != u.Prompt || e.CompletionTokens != u.Completion || u.Prompt == 0 {
		t.Errorf("recorded %+v, upstream sent %+v", e, u)
	}
	if strings.Contains(got, `"choices":[]`) || strings.Contains(got, "prompt_tokens") {
		t.Errorf("the usage chunk reached a client that did not ask for it:\n%s", got)
	}
	if !strings.HasSuffix(got, "data: [DONE]\n\n") || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("the stream's end or type changed: %q, %s", got[max(0, len(got)-40):], res.Header.Get("Content-Type"))
	}
	if joined := deltas(t, got); joined != upstreamtest.Text {
		t.Errorf("deltas joined = %q, want %q", joined, upstreamtest.Text)
	}
	var sentBody map[string]any
	if err := json.Unmarshal([]byte(lastBody(t, h, body)), &sentBody); err != nil {
		t.Fatal(err)
	}
}

// lastBody sends body once more and returns what the upstream received.
func lastBody(t *testing.T, h *harness, body string) string {
	t.Helper()
	var got string
	capt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 4096)
		n, _ := r.Body.Read(b)
		got = string(b[:n])
		w.WriteHeader(http.StatusTeapot)
	}))
	defer capt.Close()
	ups, _ := proxy.Upstreams(map[string]string{"openai": capt.URL}, nil)
	p := proxy.New(proxy.Options{Upstreams: ups, WriteError: httpapi.WriteError, Logger: quiet,
		Record: func(context.Context, tokenledger.Event) error { return nil }})
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Service: h.svc, Proxy: p, Logger: quiet}))
	defer srv.Close()
	send(t, srv.URL+"/proxy/openai/v1/chat/completions", body)
	if !strings.Contains(got, `"include_usage":true`) || !strings.Contains(got, `"other":1`) || !strings.Contains(got, `"content":"hi"`) {
		t.Errorf("the upstream got %s; want include_usage added and the rest kept", got)
	}
	return got
}

// deltas joins the content of a Chat Completions stream's chunks.
func deltas(t *testing.T, stream string) string {
	var out strings.Builder
	for _, line := range strings.Split(stream, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		for _, ch := range c.Choices {
			out.WriteString(ch.Delta.Content)
		}
	}
	return out.String()
}

// TestResentIDCountsOnce: the same response id, through the proxy and
// through /api/capture, is one request in the ledger.
func TestResentIDCountsOnce(t *testing.T) {
	h := newHarness(t, "")
	body := `{"model":"gpt-4o","messages":[]}`
	_, first := send(t, h.url+"/proxy/openai/v1/chat/completions", body, "X-Fake", "repeat")
	send(t, h.url+"/proxy/openai/v1/chat/completions", body, "X-Fake", "repeat")
	h.recorded(t, 2)
	res, answer := send(t, h.url+"/api/capture/openai", first)
	if res.StatusCode != http.StatusOK || !strings.Contains(answer, `"duplicates":1`) {
		t.Errorf("capture of the same response: %d %s", res.StatusCode, answer)
	}
	if n := todayRequests(t, h); n != 1 {
		t.Errorf("today has %d requests, want 1", n)
	}
}

// TestClientLeavesMidStream: the client reads the first event and goes;
// the proxy reads the rest from the upstream and records its usage.
func TestClientLeavesMidStream(t *testing.T) {
	h := newHarness(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/proxy/anthropic/v1/messages",
		strings.NewReader(`{"model":"claude-sonnet-4-20250514","max_tokens":9,"messages":[],"stream":true}`))
	req.Header.Set("X-Fake", "slow")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "event: message_start\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	res.Body.Close()
	e := h.recorded(t, 1)[0]
	if u := h.up.Sent()[e.ID].Usage; e.CompletionTokens != u.Completion || e.PromptTokens != u.Prompt {
		t.Errorf("recorded %+v, upstream sent %+v", e, u)
	}
}

// TestUpstreamErrors: a 429 and a 500 reach the client as sent (status,
// headers, body) and record nothing; an unreachable upstream is a 502
// naming it.
func TestUpstreamErrors(t *testing.T) {
	h := newHarness(t, "")
	for _, code := range []string{"429", "500"} {
		res, body := send(t, h.url+"/proxy/openai/v1/chat/completions", `{"model":"gpt-4o"}`, "X-Fake", code)
		if res.Status[:3] != code || !strings.Contains(body, `"error":{"message"`) {
			t.Errorf("X-Fake %s: %s %s", code, res.Status, body)
		}
		if code == "429" && res.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After = %q, want the upstream's 7", res.Header.Get("Retry-After"))
		}
	}
	if n := h.proxy.NoUsage.Load(); n != 2 || h.proxy.Recorded.Load() != 0 {
		t.Errorf("no usage %d, recorded %d; want 2 and 0", n, h.proxy.Recorded.Load())
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	ups, _ := proxy.Upstreams(map[string]string{"gemini": dead}, nil)
	p := proxy.New(proxy.Options{Upstreams: ups, WriteError: httpapi.WriteError, Logger: quiet,
		Record: func(context.Context, tokenledger.Event) error { return nil }})
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Service: h.svc, Proxy: p, Logger: quiet}))
	defer srv.Close()
	res, body := send(t, srv.URL+"/proxy/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=SECRET-KEY", `{}`)
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "The upstream gemini ("+dead+") could not be reached") || strings.Contains(body, "SECRET-KEY") {
		t.Errorf("unreachable: %d %s", res.StatusCode, body)
	}
}

// TestMalformedEvent: a line that is not JSON passes through to the
// client, is counted, and the rest of the stream is still recorded.
func TestMalformedEvent(t *testing.T) {
	h := newHarness(t, "")
	_, got := send(t, h.url+"/proxy/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=k1", `{"contents":[]}`, "X-Fake", "malformed")
	if !strings.HasPrefix(got, "data: {this is not json\n\n") {
		t.Errorf("the malformed line did not reach the client: %q", got[:40])
	}
	e := h.recorded(t, 1)[0]
	if h.proxy.Malformed.Load() != 1 || e.Model != "gemini-2.5-pro" {
		t.Errorf("malformed %d, event %+v", h.proxy.Malformed.Load(), e)
	}
	if q := h.up.Last().URL.RawQuery; q != "alt=sse&key=k1" {
		t.Errorf("the upstream got the query %q", q)
	}
}

// TestKeysAndOff: with an API key the proxy needs it in
// X-Tokenledger-Key and never forwards it; the provider's Authorization
// goes through. Without a proxy the route says how to turn it on.
func TestKeysAndOff(t *testing.T) {
	h := newHarness(t, "rec-key")
	body := `{"model":"gpt-4o","messages":[]}`
	if res, msg := send(t, h.url+"/proxy/openai/v1/chat/completions", body); res.StatusCode != http.StatusUnauthorized || !strings.Contains(msg, "X-Tokenledger-Key") {
		t.Errorf("without the key: %d %s", res.StatusCode, msg)
	}
	if res, _ := send(t, h.url+"/proxy/openai/v1/chat/completions", body, proxy.HeaderKey, "wrong"); res.StatusCode != http.StatusForbidden {
		t.Errorf("a wrong key: %d", res.StatusCode)
	}
	res, _ := send(t, h.url+"/proxy/openai/v1/chat/completions", body, proxy.HeaderKey, "rec-key", "Authorization", "Bearer sk-provider", proxy.HeaderUser, "u9")
	last := h.up.Last()
	if res.StatusCode != http.StatusOK || last.Header.Get(proxy.HeaderKey) != "" || last.Header.Get(proxy.HeaderUser) != "" || last.Header.Get("Authorization") != "Bearer sk-provider" {
		t.Errorf("with the key: %d, upstream headers %v", res.StatusCode, last.Header)
	}
	if e := h.recorded(t, 1)[0]; e.UserID != "u9" {
		t.Errorf("user %q, want the header's u9", e.UserID)
	}
	if res, msg := send(t, h.url+"/proxy/nosuch/v1/x", body, proxy.HeaderKey, "rec-key"); res.StatusCode != http.StatusNotFound || !strings.Contains(msg, "anthropic, gemini, local, openai") {
		t.Errorf("unknown upstream: %d %s", res.StatusCode, msg)
	}

	svc, _ := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Logger: quiet})
	off := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Service: svc, Logger: quiet}))
	defer off.Close()
	if res, msg := send(t, off.URL+"/proxy/openai/v1/chat/completions", body); res.StatusCode != http.StatusNotFound || !strings.Contains(msg, "TOKENLEDGER_PROXY=1") {
		t.Errorf("proxy off: %d %s", res.StatusCode, msg)
	}
}

// TestOpenAICompatible: an upstream of TOKENLEDGER_UPSTREAMS is read as
// OpenAI's shape, with its base path kept and its own name as provider.
func TestOpenAICompatible(t *testing.T) {
	h := newHarness(t, "")
	send(t, h.url+"/proxy/local/v1/chat/completions", `{"model":"llama-3.1-8b","messages":[]}`)
	e := h.recorded(t, 1)[0]
	if e.Provider != "local" || h.up.Last().URL.Path != "/compat/v1/chat/completions" || e.Pricing != tokenledger.Unpriced {
		t.Errorf("provider %q, upstream path %q, pricing %v", e.Provider, h.up.Last().URL.Path, e.Pricing)
	}
}

// TestCaptureRefusals: a body without usage and an unknown provider are
// refused with a sentence, and nothing is stored.
func TestCaptureRefusals(t *testing.T) {
	h := newHarness(t, "")
	for _, c := range []struct{ path, body, want string }{
		{"/api/capture/openai", `{"error":{"message":"Rate limit"}}`, "Nothing was stored: the OpenAI response has no usage object"},
		{"/api/capture/anthropic", "event: ping\ndata: {\"type\":\"ping\"}\n\n", "no event of the anthropic stream carried usage"},
		{"/api/capture/mistral", `{}`, "use openai, anthropic or gemini"},
	} {
		res, msg := send(t, h.url+c.path, c.body)
		if res.StatusCode/100 != 4 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %s", c.path, res.StatusCode, msg)
		}
	}
	if n := todayRequests(t, h); n != 0 {
		t.Errorf("refused captures stored %d requests", n)
	}
}

// todayRequests returns today's request count in the ledger.
func todayRequests(t *testing.T, h *harness) int64 {
	t.Helper()
	d, err := h.svc.TodayUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d == nil {
		return 0
	}
	return d.RequestCount
}

// TestRecordingFailure: when the store refuses the event, the client's
// answer is whole and unchanged, and the failure is counted.
func TestRecordingFailure(t *testing.T) {
	up := upstreamtest.Start()
	defer up.Close()
	ups, _ := proxy.Upstreams(map[string]string{"openai": up.URL}, nil)
	p := proxy.New(proxy.Options{Upstreams: ups, WriteError: httpapi.WriteError, Logger: quiet,
		Record: func(context.Context, tokenledger.Event) error { return tokenledger.ErrUnavailable }})
	svc, _ := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Logger: quiet})
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Service: svc, Proxy: p, Logger: quiet}))
	defer srv.Close()
	res, body := send(t, srv.URL+"/proxy/openai/v1/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[]}`)
	if res.StatusCode != http.StatusOK || deltas(t, body) != upstreamtest.Text || p.Failed.Load() != 1 || p.Recorded.Load() != 0 {
		t.Errorf("status %d, text %q, failed %d, recorded %d", res.StatusCode, deltas(t, body), p.Failed.Load(), p.Recorded.Load())
	}
}
