package handler

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/internal/buildinfo"
	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestOnVercelWithKV calls the /api/test function the way Vercel does, in
// a Vercel-like environment whose KV REST API is the Upstash-compatible
// front over a real redis-server, and checks the exact shape of api.md.
func TestOnVercelWithKV(t *testing.T) {
	srv := redistest.Shared(t)
	front := kvresttest.Start(t, srv.Addr(), kvresttest.Options{})
	t.Chdir(t.TempDir())
	for k, v := range map[string]string{
		"VERCEL": "1", "VERCEL_ENV": "preview", "VERCEL_REGION": "fra1", "TMPDIR": t.TempDir(),
		"UPSTASH_REDIS_REST_URL": front.URL(), "UPSTASH_REDIS_REST_TOKEN": front.Token(), "TOKENLEDGER_KEY_PREFIX": redistest.Prefix(),
	} {
		t.Setenv(k, v)
	}
	rec := httptest.NewRecorder()
	Handler(rec, httptest.NewRequest(http.MethodGet, "/api/test", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/test: %d %s", rec.Code, rec.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	db, _ := got["database"].(map[string]any)
	if latency, ok := db["latencyMs"].(float64); !ok || latency < 0 {
		t.Errorf("database.latencyMs = %v, want a number", db["latencyMs"])
	}
	delete(db, "latencyMs")
	if _, ok := got["timestamp"].(string); !ok {
		t.Errorf("timestamp = %v, want a string", got["timestamp"])
	}
	delete(got, "timestamp")
	want := map[string]any{
		"status":       "ok",
		"storageType":  "database",
		"database":     map[string]any{"configured": true, "kind": "kv-rest", "cluster": false, "connected": true, "error": nil},
		"version":      buildinfo.Version(),
		"resetEnabled": false,
		"fallback":     map[string]any{"active": false, "pendingEvents": float64(0)},
		"migration":    map[string]any{"ran": false, "migrated": float64(0), "skipped": float64(0)},
		"environment":  map[string]any{"isVercel": true, "vercelEnv": "preview", "region": "fra1", "storageType": "database"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("/api/test =\n%v\nwant\n%v", got, want)
	}
	if strings.Contains(rec.Body.String(), front.Token()) || strings.Contains(rec.Body.String(), front.URL()) {
		t.Errorf("/api/test shows the token or the full URL: %s", rec.Body)
	}
}
