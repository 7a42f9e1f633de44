package handler

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestOnVercelWithKV calls the function the way Vercel does, in a
// Vercel-like environment whose KV REST API is the Upstash-compatible front
// over a real redis-server. The deployment carries the original service's
// logs/token_usage.json, which the first request migrates.
func TestOnVercelWithKV(t *testing.T) {
	srv := redistest.Shared(t)
	front := kvresttest.Start(t, srv.Addr(), kvresttest.Options{})
	deploy := t.TempDir()
	t.Chdir(deploy)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	os.MkdirAll("logs", 0o755)
	legacy := `[{"id":"token_1","date":"` + today.Format("2006-01-02") + `","timestamp":"` + today.Format(time.RFC3339) +
		`","userId":"u1","sessionId":"s1","model":"gpt-4o","tokensUsed":40,"tokenType":"prompt","metadata":{"platform":"chat_ui"}}]`
	if err := os.WriteFile(filepath.Join("logs", "token_usage.json"), []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"VERCEL": "1", "VERCEL_ENV": "production", "VERCEL_REGION": "iad1", "TMPDIR": t.TempDir(),
		"KV_REST_API_URL": front.URL(), "KV_REST_API_TOKEN": front.Token(), "TOKENLEDGER_KEY_PREFIX": redistest.Prefix(),
	} {
		t.Setenv(k, v)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/api/tokens", strings.NewReader(`{"model":"gpt-4o","promptTokens":2,"completionTokens":3,"userId":"u2"}`))
	req.Header.Set("Content-Type", "application/json")
	Handler(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	var posted struct {
		Accepted    int    `json:"accepted"`
		StorageType string `json:"storageType"`
		Degraded    bool   `json:"degraded"`
	}
	json.Unmarshal(rec.Body.Bytes(), &posted)
	if posted.Accepted != 1 || posted.StorageType != "database" || posted.Degraded {
		t.Errorf("POST answered %s", rec.Body)
	}

	rec = httptest.NewRecorder()
	Handler(rec, httptest.NewRequest(http.MethodGet, "/api/tokens?action=all", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET action=all: %d %s", rec.Code, rec.Body)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &all); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"environment", "history", "stats", "timestamp", "todayUsage"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("action=all keys = %v, want %v", keys, want)
	}
	if got, want := string(all["environment"]), `{"isVercel":true,"storageType":"database"}`; got != want {
		t.Errorf("environment = %s, want %s", got, want)
	}
	var todayUsage struct {
		Date             string `json:"date"`
		PromptTokens     int64  `json:"promptTokens"`
		CompletionTokens int64  `json:"completionTokens"`
		TotalTokens      int64  `json:"totalTokens"`
		RequestCount     int64  `json:"requestCount"`
		UniqueUsers      int64  `json:"uniqueUsers"`
	}
	json.Unmarshal(all["todayUsage"], &todayUsage)
	if todayUsage.Date != today.Format("2006-01-02") || todayUsage.PromptTokens != 42 || todayUsage.TotalTokens != 45 ||
		todayUsage.RequestCount != 2 || todayUsage.UniqueUsers != 2 {
		t.Errorf("todayUsage = %+v, want the migrated record plus the posted event", todayUsage)
	}
	var history []json.RawMessage
	json.Unmarshal(all["history"], &history)
	if len(history) != 7 {
		t.Errorf("history holds %d days, want 7", len(history))
	}
	if strings.Contains(rec.Body.String(), front.Token()) {
		t.Error("the answer shows the token")
	}
	// The deployment's file is read-only on Vercel; here it could be
	// renamed, which is what happened.
	if _, err := os.Stat(filepath.Join("logs", "token_usage.json.migrated")); err != nil {
		t.Errorf("the bundled file was not marked as migrated: %v", err)
	}
}
