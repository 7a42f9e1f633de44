package serverless

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBadConfigurationAnswers500WithTheReason(t *testing.T) {
	var inst Instance
	env := envOf(map[string]string{"VERCEL": "1", "KV_REST_API_URL": "https://kv.example.com", "TOKENLEDGER_RETENTION_DAYS": "ninety"})
	for range 2 { // the reason is kept for every request of the instance
		rec := httptest.NewRecorder()
		inst.Serve(rec, httptest.NewRequest(http.MethodGet, "/api/tokens", nil), env)
		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", rec.Code)
		}
		if want := `{"error":"tokenledger could not start: KV_REST_API_URL is set but KV_REST_API_TOKEN is not; set both or neither"}`; strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("body = %s, want %s", rec.Body, want)
		}
	}
}

func TestWithoutADatabaseTheFileLivesInTheTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Chdir(t.TempDir())
	var inst Instance
	env := envOf(map[string]string{"VERCEL": "1", "TMPDIR": tmp})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/api/tokens", strings.NewReader(`{"model":"m","promptTokens":1}`))
	req.Header.Set("Content-Type", "application/json")
	inst.Serve(rec, req, env)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"storageType":"file-system"`) {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	if err := inst.app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "token_usage.json")); err != nil {
		t.Errorf("no usage file in the temp dir: %v", err)
	}
	if _, err := os.Stat("logs"); !os.IsNotExist(err) {
		t.Errorf("something was written beside the deployment: %v", err)
	}
}
