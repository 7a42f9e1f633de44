package serverless

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestKeysGuardTheFunctions: the Vercel functions are on the internet, so
// they enforce TOKENLEDGER_API_KEY and TOKENLEDGER_READ_KEY as serve does.
func TestKeysGuardTheFunctions(t *testing.T) {
	t.Chdir(t.TempDir())
	var inst Instance
	t.Cleanup(func() {
		if inst.app != nil {
			_ = inst.app.Close()
		}
	})
	env := envOf(map[string]string{
		"VERCEL": "1", "TMPDIR": t.TempDir(),
		"TOKENLEDGER_API_KEY": "api-key-0123456789abcdef", "TOKENLEDGER_READ_KEY": "read-key-0123456789abcdef",
	})
	for _, tc := range []struct {
		method, key string
		want        int
	}{
		{http.MethodPost, "", 401},
		{http.MethodPost, "read-key-0123456789abcdef", 403},
		{http.MethodPost, "api-key-0123456789abcdef", 200},
		{http.MethodGet, "", 401},
		{http.MethodGet, "read-key-0123456789abcdef", 200},
	} {
		req := httptest.NewRequest(tc.method, "/api/tokens", strings.NewReader(`{"model":"m","promptTokens":1}`))
		req.Header.Set("Content-Type", "application/json")
		if tc.key != "" {
			req.Header.Set("Authorization", "Bearer "+tc.key)
		}
		rec := httptest.NewRecorder()
		inst.Serve(rec, req, env)
		if rec.Code != tc.want {
			t.Errorf("%s with key %q = %d %s, want %d", tc.method, tc.key, rec.Code, rec.Body, tc.want)
		}
	}
}
