// Package upstreamtest is a stand-in for the providers' servers, which
// cannot be reached from the tests: an HTTP server on loopback that
// answers OpenAI's Chat Completions and Responses, Anthropic's Messages
// and Gemini's generateContent in their documented shapes, whole and
// streamed, with cached, cache-write and reasoning tokens. It remembers
// the usage of every answer it gave, so a test can compare what the
// ledger recorded with what the provider said.
//
// A request's X-Fake header picks a behaviour: "429" and "500" answer
// OpenAI's error shape (no usage);
// "slow" streams with a pause between events; "malformed" puts a line
// that is not JSON in the stream; "repeat" answers with the same id each
// time; "delay" waits Pause before it answers, as a real model does;
// "cut" drops the connection in the middle of a stream; "endless" and
// "endless-line" never end (hostile.go).
package upstreamtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/tokenledger/tokenledger/capture"
)

// Text is what every answer says, streamed in Deltas.
const Text = "Hello from the test upstream, streamed in pieces."

// Deltas are Text's pieces in a stream.
var Deltas = []string{"Hello", " from the test", " upstream,", " streamed", " in pieces."}

// Server is a running stand-in.
type Server struct {
	*httptest.Server
	// Pause is the time between events of a "slow" stream.
	Pause time.Duration

	mu       sync.Mutex
	n        int
	sent     map[string]Answer
	last     *http.Request
	requests []Request
}

// Request is one request as the stand-in received it.
type Request struct {
	Method, Host string
	URI          string // the request target as sent: escaped path and query
	Header       http.Header
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Last returns the last request received (its body already read).
func (s *Server) Last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Answer is the usage one answer carried, and who asked.
type Answer struct {
	Kind  capture.Kind
	Usage capture.Usage
	User  string // the request's user field, if any
}

// Start starts a stand-in on loopback; the caller closes it.
func Start() *Server {
	s := &Server{sent: map[string]Answer{}, Pause: 50 * time.Millisecond}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Sent returns the answers given, by response id.
func (s *Server) Sent() map[string]Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Answer, len(s.sent))
	for k, v := range s.sent {
		out[k] = v
	}
	return out
}

// request is what the stand-in reads of a request body.
type request struct {
	size          int    // the body's length
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	User          string `json:"user"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Metadata struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.last = r.Clone(r.Context())
	s.requests = append(s.requests, Request{Method: r.Method, Host: r.Host, URI: r.RequestURI, Header: r.Header.Clone()})
	s.mu.Unlock()
	var req request
	if len(body) > 0 && json.Unmarshal(body, &req) != nil {
		http.Error(w, `{"error":{"message":"invalid JSON body"}}`, http.StatusBadRequest)
		return
	}
	req.size = len(body)
	fake := r.Header.Get("X-Fake")
	switch fake {
	case "delay":
		time.Sleep(s.Pause)
	case "cut":
		cut(w)
		return
	case "endless", "endless-line":
		s.endless(w, r, req.Stream, fake == "endless-line")
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/chat/completions"):
		s.chat(w, req, fake)
	case strings.HasSuffix(p, "/responses"):
		s.responses(w, req, fake)
	case strings.HasSuffix(p, "/messages"):
		s.messages(w, req, fake)
	case strings.Contains(p, "/models/") && strings.HasSuffix(p, ":generateContent"):
		s.gemini(w, req, modelOf(p), false, fake)
	case strings.Contains(p, "/models/") && strings.HasSuffix(p, ":streamGenerateContent"):
		s.gemini(w, req, modelOf(p), r.URL.Query().Get("alt") == "sse", fake)
	default:
		http.Error(w, `{"error":{"message":"unknown path `+p+`"}}`, http.StatusNotFound)
	}
}

func modelOf(p string) string {
	_, after, _ := strings.Cut(p, "/models/")
	m, _, _ := strings.Cut(after, ":")
	return m
}

// next returns a fresh id with prefix, and usage with every bucket in
// use that follows from the request (so the same request gets the same
// answer but for its id, and different ones different counts).
func (s *Server) next(prefix, fake string, req request) (string, capture.Usage) {
	s.mu.Lock()
	s.n++
	n := int64(s.n)
	s.mu.Unlock()
	id := fmt.Sprintf("%s%06d", prefix, n)
	if fake == "repeat" { // the same response id every time, as a retried gateway may send
		id = prefix + "repeat"
	}
	n = int64(req.size % 997)
	return id, capture.Usage{Prompt: 1000 + n, CacheRead: 512, CacheWrite: 0, Completion: 300 + n, Reasoning: 128}
}

func (s *Server) remember(id string, a Answer) {
	s.mu.Lock()
	s.sent[id] = a
	s.mu.Unlock()
}

// failed answers X-Fake 429 or 500 in the provider's error shape and
// reports whether it did.
func failed(w http.ResponseWriter, fake string) bool {
	switch fake {
	case "429":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
		return true
	case "500":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"message":"The server had an error while processing your request","type":"server_error","param":null,"code":null}}`)
		return true
	}
	return false
}

// sse writes a text/event-stream: each event as named (when name is not
// empty) and its data, flushed one by one.
type sse struct {
	w     http.ResponseWriter
	pause time.Duration
}

func (s *Server) newSSE(w http.ResponseWriter, fake string) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	e := &sse{w: w}
	if fake == "slow" {
		e.pause = s.Pause
	}
	if fake == "malformed" {
		io.WriteString(w, "data: {this is not json\n\n")
	}
	return e
}

func (e *sse) send(name string, data any) {
	b, _ := json.Marshal(data)
	e.raw(name, string(b))
}

func (e *sse) raw(name, data string) {
	if name != "" {
		fmt.Fprintf(e.w, "event: %s\n", name)
	}
	fmt.Fprintf(e.w, "data: %s\n\n", data)
	e.w.(http.Flusher).Flush()
	if e.pause > 0 {
		time.Sleep(e.pause)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
