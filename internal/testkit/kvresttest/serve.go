package kvresttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// refused are the commands the front does not run: they would change a
// pooled connection's state, block it, or stream.
var refused = map[string]bool{
	"AUTH": true, "HELLO": true, "SELECT": true, "CLIENT": true, "QUIT": true, "RESET": true,
	"MULTI": true, "EXEC": true, "DISCARD": true, "WATCH": true, "UNWATCH": true,
	"SUBSCRIBE": true, "PSUBSCRIBE": true, "SSUBSCRIBE": true, "UNSUBSCRIBE": true,
	"PUNSUBSCRIBE": true, "SUNSUBSCRIBE": true, "MONITOR": true, "SYNC": true, "PSYNC": true,
	"BLPOP": true, "BRPOP": true, "BRPOPLPUSH": true, "BLMOVE": true, "BLMPOP": true,
	"BZPOPMIN": true, "BZPOPMAX": true, "BZMPOP": true, "WAIT": true, "WAITAOF": true,
	"SHUTDOWN": true, "DEBUG": true,
}

// reply writes status and v as JSON.
func reply(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

type errorBody struct {
	Error string `json:"error"`
}

type resultBody struct {
	Result any `json:"result"`
}

func (s *Server) invalidReq(w http.ResponseWriter, status int, format string, args ...any) {
	s.invalid.Add(1)
	reply(w, status, errorBody{fmt.Sprintf(format, args...)})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.URL.Path != "/" && r.URL.Path != "/pipeline" {
		s.invalidReq(w, http.StatusNotFound, "ERR kvresttest serves only POST / and POST /pipeline, not %s", r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.invalidReq(w, http.StatusMethodNotAllowed, "ERR method %s is not allowed", r.Method)
		return
	}
	auth := r.Header.Values("Authorization")
	client := (*redis.Client)(nil)
	switch {
	case len(auth) == 1 && auth[0] == "Bearer "+s.token:
		client = s.rdb
	case len(auth) == 1 && auth[0] == "Bearer "+s.roToken:
		client = s.ro
	}
	if client == nil || r.URL.Query().Has("_token") {
		s.unauthorized.Add(1)
		reply(w, http.StatusUnauthorized, errorBody{"WRONGPASS invalid or missing auth token"})
		return
	}
	if ct := r.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != "application/json" {
		s.invalidReq(w, http.StatusBadRequest, "Invalid content type. Expected application/json.")
		return
	}
	if r.Header.Get("Upstash-Encoding") != "" || r.Header.Get("Upstash-Response-Format") != "" {
		s.invalidReq(w, http.StatusBadRequest, "ERR kvresttest does not implement Upstash-Encoding or Upstash-Response-Format")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.maxBytes+1))
	if err != nil {
		s.invalidReq(w, http.StatusBadRequest, "ERR could not read the request body: %v", err)
		return
	}
	if int64(len(body)) > s.maxBytes {
		s.invalidReq(w, http.StatusBadRequest, "ERR max request size exceeded")
		return
	}
	pipeline := r.URL.Path == "/pipeline"
	cmds, err := parseBody(body, pipeline)
	if err != nil {
		s.invalidReq(w, http.StatusBadRequest, "ERR %v", err)
		return
	}
	if pipeline {
		s.pipeline.Add(1)
	} else {
		s.single.Add(1)
	}

	f := s.nextFault()
	s.faults[f.Kind].Add(1)
	switch f.Kind {
	case FailBefore:
		reply(w, http.StatusServiceUnavailable, errorBody{"ERR injected failure: service unavailable"})
		return
	case Reject:
		reply(w, http.StatusBadRequest, errorBody{"ERR injected rejection"})
		return
	case DropBefore:
		drop(w)
		return
	case Delay:
		d := f.Delay
		if d == 0 {
			d = DefaultDelay
		}
		time.Sleep(d)
	}

	// Once the front has decided to run the commands, they run, even when
	// the client has gone: as on a real server.
	ctx := context.WithoutCancel(r.Context())
	results, err := s.run(ctx, client, cmds)
	switch {
	case err != nil:
		reply(w, http.StatusInternalServerError, errorBody{"ERR the database did not answer: " + err.Error()})
		return
	case f.Kind == FailAfter:
		reply(w, http.StatusBadGateway, errorBody{"ERR injected failure after the commands ran"})
		return
	case f.Kind == DropAfter:
		drop(w)
		return
	}
	if pipeline {
		reply(w, http.StatusOK, results)
		return
	}
	if e, ok := results[0].(errorBody); ok {
		reply(w, http.StatusBadRequest, e)
		return
	}
	reply(w, http.StatusOK, results[0])
}

// run sends cmds to Redis in one pipeline and returns one resultBody or
// errorBody per command. The error is non-nil when Redis could not be
// reached.
func (s *Server) run(ctx context.Context, c *redis.Client, cmds [][]any) ([]any, error) {
	out := make([]any, len(cmds))
	var todo []int
	for i, cmd := range cmds {
		name := strings.ToUpper(cmd[0].(string))
		if refused[name] {
			out[i] = errorBody{fmt.Sprintf("ERR Command is not available: '%s'. See https://upstash.com/docs/redis/overall/rediscompatibility for details", strings.ToLower(name))}
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return out, nil
	}
	s.commands.Add(int64(len(todo)))
	if len(todo) == 1 { // no pipeline needed (nor go-redis's pipeline machinery)
		i := todo[0]
		v, err := c.Do(ctx, cmds[i]...).Result()
		r, err := resultOf(v, err)
		if err != nil {
			return nil, err
		}
		out[i] = r
		return out, nil
	}
	pipe := c.Pipeline()
	rc := make([]*redis.Cmd, len(todo))
	for j, i := range todo {
		rc[j] = pipe.Do(ctx, cmds[i]...)
	}
	_, _ = pipe.Exec(ctx)
	for j, i := range todo {
		r, err := resultOf(rc[j].Result())
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// resultOf turns one go-redis reply into a resultBody or errorBody; the
// error is non-nil when Redis could not be reached.
func resultOf(v any, err error) (any, error) {
	var rerr redis.Error
	switch {
	case err == nil:
		return resultBody{toJSON(v)}, nil
	case errors.Is(err, redis.Nil):
		return resultBody{nil}, nil
	case errors.As(err, &rerr):
		return errorBody{rerr.Error()}, nil
	}
	return nil, err
}

// toJSON maps a RESP2 reply as go-redis gives it to its JSON form.
func toJSON(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toJSON(e)
		}
		return out
	case error:
		return x.Error()
	}
	return v // int64, string (json.Marshal replaces invalid UTF-8 with U+FFFD), nil
}

// parseBody reads one command (a JSON array of strings and numbers) or,
// for a pipeline, a non-empty array of them. Numbers become their decimal
// text, as Redis receives every argument.
func parseBody(body []byte, pipeline bool) ([][]any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("the body is not JSON: %v", err)
	}
	if d.More() {
		return nil, errors.New("the body holds more than one JSON value")
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("the body holds more than one JSON value")
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, errors.New("the body must be a non-empty JSON array")
	}
	if !pipeline {
		cmd, err := parseCommand(arr)
		if err != nil {
			return nil, err
		}
		return [][]any{cmd}, nil
	}
	cmds := make([][]any, len(arr))
	for i, e := range arr {
		a, ok := e.([]any)
		if !ok {
			return nil, fmt.Errorf("pipeline entry %d is not an array", i+1)
		}
		cmd, err := parseCommand(a)
		if err != nil {
			return nil, fmt.Errorf("pipeline entry %d: %v", i+1, err)
		}
		cmds[i] = cmd
	}
	return cmds, nil
}

func parseCommand(arr []any) ([]any, error) {
	if len(arr) == 0 {
		return nil, errors.New("a command must not be empty")
	}
	cmd := make([]any, len(arr))
	for i, e := range arr {
		switch x := e.(type) {
		case string:
			cmd[i] = x
		case json.Number:
			cmd[i] = x.String()
		default:
			return nil, fmt.Errorf("argument %d is a JSON %T; arguments are strings or numbers", i+1, e)
		}
	}
	if _, ok := cmd[0].(string); !ok || !isName(cmd[0].(string)) {
		return nil, fmt.Errorf("%q is not a command name", cmd[0])
	}
	return cmd, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '|') {
			return false
		}
	}
	return true
}
