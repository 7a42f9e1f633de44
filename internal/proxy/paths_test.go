package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/proxy"
	"github.com/tokenledger/tokenledger/internal/testkit/upstreamtest"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// rawRequest sends req (request line and headers, without the blank
// line) to addr as written, with a small JSON body, and returns the
// status and body of the answer.
func rawRequest(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	body := `{"model":"gpt-4o","messages":[]}`
	fmt.Fprintf(conn, "%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", req, len(body), body)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestOnlyConfiguredUpstreams sends requests whose path, request target
// or headers try to reach another host or climb out of an upstream's base
// path, each written byte for byte onto the connection (a Go client would
// clean them up first). An "evil" stand-in on another port, the one every
// trick names, must get nothing; the configured stand-in gets either
// nothing (the request is refused with one sentence) or exactly the
// expected request, with its own address as Host and no forwarding
// headers.
func TestOnlyConfiguredUpstreams(t *testing.T) {
	good, evil := upstreamtest.Start(), upstreamtest.Start()
	defer good.Close()
	defer evil.Close()
	ups, err := proxy.Upstreams(map[string]string{"openai": good.URL, "anthropic": good.URL, "gemini": good.URL},
		map[string]string{"local": good.URL + "/compat"})
	if err != nil {
		t.Fatal(err)
	}
	p := proxy.New(proxy.Options{Upstreams: ups, WriteError: httpapi.WriteError, Logger: quiet,
		Record: func(context.Context, tokenledger.Event) error { return nil }})
	svc, _ := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Logger: quiet})
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Service: svc, Proxy: p, Logger: quiet}))
	defer srv.Close()
	E := evil.Listener.Addr().String()
	G := good.Listener.Addr().String()
	const chat = "/v1/chat/completions"

	for _, c := range []struct {
		name, req string
		status    int    // for a refusal; 0 when the request is forwarded
		uri       string // what the configured stand-in gets, when forwarded
	}{
		{"absolute-form target", "POST http://" + E + "/proxy/openai" + chat + " HTTP/1.1\r\nHost: " + E, 0, chat},
		{"Host header", "POST /proxy/openai" + chat + " HTTP/1.1\r\nHost: " + E, 0, chat},
		{"forwarding headers", "POST /proxy/openai" + chat + " HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: " + E + "\r\nForwarded: host=" + E + "\r\nX-Forwarded-Proto: http", 0, chat},
		{"absolute URL in the path", "POST /proxy/openai/http://" + E + chat + " HTTP/1.1\r\nHost: x", 404, ""},
		{"scheme-relative URL in the path", "POST /proxy/openai//" + E + chat + " HTTP/1.1\r\nHost: x", 404, ""},
		{"absolute URL as the name", "POST /proxy/http://" + E + chat + " HTTP/1.1\r\nHost: x", 404, ""},
		{"user-info name", "POST /proxy/openai@" + E + chat + " HTTP/1.1\r\nHost: x", 404, ""},
		{"unknown name", "POST /proxy/evil" + chat + " HTTP/1.1\r\nHost: x", 404, ""},
		{"name in another case", "POST /proxy/OpenAI" + chat + " HTTP/1.1\r\nHost: x", 404, ""},
		{"encoded slashes to a URL", "POST /proxy/openai/http:%2F%2F" + E + chat + " HTTP/1.1\r\nHost: x", 404, ""},
		{"dot-dot to another upstream", "POST /proxy/local/../openai" + chat + " HTTP/1.1\r\nHost: x", 404, ""},
		{"dot-dot out of the base", "POST /proxy/local/v1/../../admin HTTP/1.1\r\nHost: x", 404, ""},
		{"encoded dot-dot", "POST /proxy/local/%2e%2e/admin HTTP/1.1\r\nHost: x", 404, ""},
		{"encoded slash and dots", "POST /proxy/local/v1%2F..%2F..%2Fadmin HTTP/1.1\r\nHost: x", 404, ""},
		{"encoded slash alone", "POST /proxy/local/v1%2fchat%2fcompletions HTTP/1.1\r\nHost: x", 400, ""},
		{"double-encoded slash", "POST /proxy/local/v1%252F..%252F..%252Fadmin HTTP/1.1\r\nHost: x", 400, ""},
		{"double-encoded dots", "POST /proxy/local/v1/%252e%252e/%252e%252e/admin HTTP/1.1\r\nHost: x", 400, ""},
		{"backslash", "POST /proxy/local/..\\admin HTTP/1.1\r\nHost: x", 400, ""},
		{"encoded backslash", "POST /proxy/local/..%5Cadmin HTTP/1.1\r\nHost: x", 400, ""},
		{"Tomcat's ..;", "POST /proxy/local/..;/admin HTTP/1.1\r\nHost: x", 400, ""},
		{"query and user-info in a segment", "POST /proxy/local/v1%3F@" + E + "/x HTTP/1.1\r\nHost: x", 0, "/compat/v1%3F@" + E + "/x"},
		{"a literal percent", "POST /proxy/local/v1/chat%25zz HTTP/1.1\r\nHost: x", 0, "/compat/v1/chat%25zz"},
		{"CONNECT", "CONNECT " + E + " HTTP/1.1\r\nHost: " + E, 405, ""}, // http.ServeMux's own answer, in text
		{"rewrite route, dot-dot", "POST /api/proxy?tokenledger_path=local/../admin HTTP/1.1\r\nHost: x", 400, ""},
		{"rewrite route, encoded dot-dot", "POST /api/proxy?tokenledger_path=local%2F%2e%2e%2Fadmin HTTP/1.1\r\nHost: x", 400, ""},
		{"rewrite route, scheme-relative URL", "POST /api/proxy?tokenledger_path=local//" + E + "/x HTTP/1.1\r\nHost: x", 400, ""},
		{"rewrite route, absolute URL", "POST /api/proxy?tokenledger_path=http://" + E + "/x HTTP/1.1\r\nHost: x", 404, ""},
		{"rewrite route, allowed", "POST /api/proxy?tokenledger_path=local/v1/chat/completions&a=1 HTTP/1.1\r\nHost: x", 0, "/compat" + chat + "?a=1"},
	} {
		before := len(good.Requests())
		status, body := rawRequest(t, srv.Listener.Addr().String(), c.req)
		got := good.Requests()[before:]
		if c.status != 0 {
			sentence := strings.HasPrefix(body, `{"error":"`) || c.status == 405
			if status != c.status || !sentence || len(got) != 0 {
				t.Errorf("%s: %d %s, and %d requests forwarded; want %d with a sentence and none", c.name, status, body, len(got), c.status)
			}
			continue
		}
		if len(got) != 1 || got[0].URI != c.uri || got[0].Host != G {
			t.Errorf("%s: answered %d; the upstream got %+v, want one request for %s at %s", c.name, status, got, c.uri, G)
			continue
		}
		for _, hd := range []string{"Forwarded", "X-Forwarded-Host", "X-Forwarded-For", "X-Forwarded-Proto"} {
			if v := got[0].Header.Get(hd); v != "" {
				t.Errorf("%s: the upstream got %s: %s", c.name, hd, v)
			}
		}
	}
	if n := len(evil.Requests()); n != 0 {
		t.Errorf("the evil stand-in got %d requests: %+v", n, evil.Requests())
	}
}
