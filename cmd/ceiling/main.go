// Command ceiling is the baseline that BENCHMARKS.md compares tokenledger's
// HTTP path with: a bare Go net/http server whose POST /api/tokens decodes
// the same JSON (one event or an array, with encoding/json into a plain
// struct, no validation) and does one Redis INCR per request, answering
// like tokenledger does. Nothing else: no ids, no dedupe, no aggregates, no
// spool. scripts/bench.sh drives it with `tokenledger bench --verify=false`
// at the same concurrency as tokenledger itself.
//
//	go run ./cmd/ceiling --addr 127.0.0.1:0 --redis 127.0.0.1:6379
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// event is the wire event, decoded without any checks.
type event struct {
	ID               string          `json:"id"`
	Timestamp        string          `json:"timestamp"`
	Model            string          `json:"model"`
	Provider         string          `json:"provider"`
	UserID           string          `json:"userId"`
	SessionID        string          `json:"sessionId"`
	PromptTokens     int64           `json:"promptTokens"`
	CompletionTokens int64           `json:"completionTokens"`
	CacheReadTokens  int64           `json:"cacheReadTokens"`
	CacheWriteTokens int64           `json:"cacheWriteTokens"`
	ReasoningTokens  int64           `json:"reasoningTokens"`
	TotalTokens      int64           `json:"totalTokens"`
	CostUSD          json.Number     `json:"costUsd"`
	Metadata         json.RawMessage `json:"metadata"`
}

type answer struct {
	Accepted    int      `json:"accepted"`
	Duplicates  int      `json:"duplicates"`
	IDs         []string `json:"ids"`
	StorageType string   `json:"storageType"`
	Degraded    bool     `json:"degraded"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis host:port")
	flag.Parse()
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, Protocol: 2})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling: redis:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/tokens", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, `{"error":"body"}`, http.StatusRequestEntityTooLarge)
			return
		}
		var events []event
		if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
			err = json.Unmarshal(b, &events)
		} else {
			events = make([]event, 1)
			err = json.Unmarshal(b, &events[0])
		}
		if err != nil {
			http.Error(w, `{"error":"json"}`, http.StatusBadRequest)
			return
		}
		if err := rdb.Incr(r.Context(), "ceiling:requests").Err(); err != nil {
			http.Error(w, `{"error":"redis"}`, http.StatusServiceUnavailable)
			return
		}
		a := answer{Accepted: len(events), IDs: make([]string, len(events)), StorageType: "database"}
		for i := range events {
			a.IDs[i] = events[i].ID
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(a)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
	fmt.Printf("ceiling listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		<-c
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}
