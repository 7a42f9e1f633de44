package serverless

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestStartFailureAnswers500AndLogsTheReason: an instance that cannot
// start (here a malformed variable) answers every request with the
// contract's 500, with the headers of every answer, and logs the reason
// on every request (the Vercel function log is where the operator looks),
// secrets removed even though the configuration never loaded.
func TestStartFailureAnswers500AndLogsTheReason(t *testing.T) {
	const secret = "sekret-0123456789abcdef"
	var logs bytes.Buffer
	inst := Instance{logOutput: &logs}
	env := envOf(map[string]string{"VERCEL": "1", "TOKENLEDGER_API_KEY": secret, "TOKENLEDGER_RETENTION_DAYS": secret})
	for n := 1; n <= 2; n++ { // the reason is kept for every request of the instance
		rec := httptest.NewRecorder()
		inst.Serve(rec, httptest.NewRequest(http.MethodGet, "/api/tokens", nil), env)
		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", rec.Code)
		}
		if want := `{"error":"Internal error; the details are in the server log"}`; strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("body = %s, want %s", rec.Body, want)
		}
		for name, want := range map[string]string{
			"Content-Type":           "application/json; charset=utf-8",
			"Cache-Control":          "no-store",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := rec.Header().Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if got := strings.Count(logs.String(), "TOKENLEDGER_RETENTION_DAYS must be"); got != n {
			t.Errorf("after %d requests the reason is logged %d times; log:\n%s", n, got, logs.String())
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the log shows the secret:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "path=/api/tokens") {
		t.Errorf("the log line is not an error naming the request:\n%s", logs.String())
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
