package serverless

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/internal/testkit/upstreamtest"
)

// TestProxyFunction: with TOKENLEDGER_PROXY=1 the function forwards and
// records both under the original path and under vercel.json's rewrite
// (/api/proxy?tokenledger_path=…, the query kept).
func TestProxyFunction(t *testing.T) {
	up := upstreamtest.Start()
	defer up.Close()
	t.Chdir(t.TempDir())
	var inst Instance
	defer inst.Close()
	env := envOf(map[string]string{"VERCEL": "1", "TMPDIR": t.TempDir(), "TOKENLEDGER_PROXY": "1", "TOKENLEDGER_UPSTREAM_GEMINI": up.URL})
	for _, target := range []string{
		"/proxy/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=k1",
		"/api/proxy?tokenledger_path=gemini/v1beta/models/gemini-2.5-flash:generateContent&key=k1",
	} {
		rec := httptest.NewRecorder()
		inst.Serve(rec, httptest.NewRequest(http.MethodPost, target, strings.NewReader(`{"contents":[]}`)), env)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), upstreamtest.Text) {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		if last := up.Last().URL; last.Path != "/v1beta/models/gemini-2.5-flash:generateContent" || last.RawQuery != "key=k1" {
			t.Errorf("%s: the upstream got %s", target, last)
		}
	}
	rec := httptest.NewRecorder()
	inst.Serve(rec, httptest.NewRequest(http.MethodGet, "/api/tokens?action=today", nil), env)
	if !strings.Contains(rec.Body.String(), `"requestCount":2`) {
		t.Errorf("today after two proxied calls: %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	inst.Serve(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil), env)
	for _, want := range []string{`tokenledger_proxy_requests_total{code="200",upstream="gemini"} 2`, `tokenledger_events_total{result="accepted"} 2`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
