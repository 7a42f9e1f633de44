package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/config"
)

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func load(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func open(t *testing.T, cfg config.Config, o Options) (*App, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	a, err := Open(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, logs
}

func logOne(t *testing.T, a *App) {
	t.Helper()
	res, err := a.Service.Log(context.Background(), []tokenledger.Event{{ID: "e1", Model: "m", PromptTokens: 4, TotalTokens: 4}})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("Log: %+v %v", res, err)
	}
}

func TestOpenMemory(t *testing.T) {
	a, logs := open(t, load(t, map[string]string{"TOKENLEDGER_STORE": "memory"}), Options{})
	logOne(t, a)
	if a.Info.Kind != "memory" {
		t.Errorf("Info = %+v", a.Info)
	}
	if !strings.Contains(logs.String(), "💾 Using the memory store at process memory (TOKENLEDGER_STORE=memory)") {
		t.Errorf("no startup line:\n%s", logs)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestOpenFileKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "usage.json")
	cfg := load(t, map[string]string{"TOKENLEDGER_FILE": path})
	a, logs := open(t, cfg, Options{Spool: true, Migrate: true}) // as serve opens it
	logOne(t, a)
	if a.Info.Kind != "file" || a.Info.Location != path {
		t.Errorf("Info = %+v, want file at %s", a.Info, path)
	}
	if want := "💾 Using the file store at " + path + " (auto: no database is configured)"; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := open(t, cfg, Options{})
	st, err := b.Service.Stats(context.Background())
	if err != nil || st.TotalRequests != 1 {
		t.Errorf("after reopening: %+v %v, want 1 request", st, err)
	}
}

func TestRepair(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "usage.json")
	if err := os.WriteFile(path, []byte("{ this is not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, map[string]string{"TOKENLEDGER_FILE": path})
	_, err := Open(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "a repair moves it aside") {
		t.Fatalf("Open on a corrupt file = %v, want an error that points to a repair", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{ this is not json" {
		t.Fatalf("Open changed the corrupt file: %q", b)
	}

	a, logs := open(t, cfg, Options{Repair: true})
	logOne(t, a)
	if !strings.Contains(logs.String(), "moved a corrupt file aside") {
		t.Errorf("log lacks the repair line:\n%s", logs)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("corrupt copies: %v, want one", matches)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != "{ this is not json" {
		t.Errorf("the moved file holds %q", b)
	}
	_ = a.Close()

	// A healthy file is left alone.
	a, logs = open(t, cfg, Options{Repair: true})
	if !strings.Contains(logs.String(), "nothing to repair") {
		t.Errorf("log lacks 'nothing to repair':\n%s", logs)
	}
	if st, _ := a.Service.Stats(context.Background()); st.TotalRequests != 1 {
		t.Errorf("after a no-op repair: %d requests, want 1", st.TotalRequests)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		o    Options
		want string
		is   error
	}{
		{"redis down without a spool", map[string]string{"REDIS_URL": "redis://:hunter2@127.0.0.1:1"}, Options{},
			"redis 127.0.0.1:1: load script: storage unavailable: dial tcp 127.0.0.1:1: connect: connection refused", tokenledger.ErrUnavailable},
		{"kv down without a spool", map[string]string{"TOKENLEDGER_STORE": "kv", "KV_REST_API_URL": "http://127.0.0.1:1", "KV_REST_API_TOKEN": "secret-token"}, Options{},
			"", tokenledger.ErrUnavailable},
		{"repair on memory", map[string]string{"TOKENLEDGER_STORE": "memory"}, Options{Repair: true},
			"--repair applies to the local file store only, and the store is memory (TOKENLEDGER_STORE=memory)", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Logger = slog.New(slog.DiscardHandler)
			a, err := Open(context.Background(), load(t, tc.env), tc.o)
			if err == nil {
				a.Close()
				t.Fatal("Open succeeded")
			}
			if tc.want != "" && err.Error() != tc.want {
				t.Errorf("error =\n%q\nwant\n%q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error does not match %v", tc.is)
			}
			if strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "hunter2") {
				t.Error("error shows the token")
			}
		})
	}
}

func TestHandler(t *testing.T) {
	cfg := load(t, map[string]string{
		"TOKENLEDGER_STORE": "memory", "VERCEL": "1", "VERCEL_ENV": "preview", "VERCEL_REGION": "fra1",
		"TOKENLEDGER_ADMIN_KEY": "0123456789abcdef",
	})
	a, _ := open(t, cfg, Options{Now: func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }})
	logOne(t, a)
	h := a.Handler()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/test", nil))
	for _, want := range []string{`"isVercel":true`, `"vercelEnv":"preview"`, `"region":"fra1"`, `"migration":{"ran":false,"migrated":0,"skipped":0}`, `"timestamp":"2026-11-27T12:00:00.000Z"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/api/test lacks %s: %s", want, rec.Body)
		}
	}

	req := httptest.NewRequest("DELETE", "/api/tokens", nil)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("DELETE with the configured key: %d %s", rec.Code, rec.Body)
	}
	if st, _ := a.Service.Stats(context.Background()); st.TotalRequests != 0 {
		t.Errorf("after reset: %d requests", st.TotalRequests)
	}
}
