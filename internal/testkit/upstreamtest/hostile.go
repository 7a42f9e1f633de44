package upstreamtest

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// cut starts an Anthropic stream and drops the connection in the middle
// of it, as a crashed upstream does.
func cut(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_cut\",\"model\":\"claude-sonnet-4-20250514\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n")
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// The pieces an endless answer repeats: a Chat Completions chunk of about
// 1 KiB, 64 KiB of a JSON array's elements, or 16 KiB of one line.
var (
	endlessEvent = "data: " + `{"id":"chatcmpl-endless","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"` +
		strings.Repeat("x", 900) + `"},"finish_reason":null}]}` + "\n\n"
	endlessJSON = strings.Repeat(`{"index":0,"message":{"role":"assistant","content":"`+strings.Repeat("y", 200)+`"}},`, 256)
	endlessLine = strings.Repeat("z", 16<<10)
)

// endless answers 200 and never ends: one piece every Pause until the
// client (the proxy) goes away. A stream is Chat Completions chunks, or
// with line a single "data:" line that never ends; otherwise the body is
// a JSON object whose "choices" array never closes. None carries usage.
func (s *Server) endless(w http.ResponseWriter, r *http.Request, stream, line bool) {
	head, piece := `{"id":"chatcmpl-endless","object":"chat.completion","model":"gpt-4o","choices":[`, endlessJSON
	w.Header().Set("Content-Type", "application/json")
	switch {
	case line:
		head, piece = "data: ", endlessLine
		w.Header().Set("Content-Type", "text/event-stream")
	case stream:
		head, piece = "", endlessEvent
		w.Header().Set("Content-Type", "text/event-stream")
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, head)
	t := time.NewTicker(s.Pause)
	defer t.Stop()
	for {
		if _, err := io.WriteString(w, piece); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}
