// Package kvresttest runs an Upstash-compatible REST front (the protocol of
// Vercel KV and Upstash Redis) over a real redis-server, on loopback only,
// for the tests of the kv-rest store. It is as strict as the real service,
// and can inject faults; docs/redis.md, "The test front", lists its rules.
package kvresttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultMaxRequestBytes is Upstash's request size limit on the Free and
// Pay-as-you-go plans.
const DefaultMaxRequestBytes = 1 << 20

// DefaultDelay is how long a Delay fault waits when its Delay is zero.
const DefaultDelay = 3 * time.Second

// readOnlyUser is the Redis ACL user behind the read-only token.
const readOnlyUser = "kvresttest_ro"

// Options configure a Server.
type Options struct {
	// Token is the standard token; a random one when empty.
	Token string
	// ReadOnlyToken is the read-only token; a random one when empty.
	ReadOnlyToken string
	// MaxRequestBytes bounds a request body; DefaultMaxRequestBytes when 0.
	MaxRequestBytes int64
	// PoolSize is the number of Redis connections; 128 when 0.
	PoolSize int
}

// FaultKind is a kind of injected fault.
type FaultKind int

// Fault kinds.
const (
	// None serves the request normally.
	None FaultKind = iota
	// FailBefore answers 503 with {"error"} without running the commands.
	FailBefore
	// FailAfter runs the commands, then answers 502 with {"error"}: the
	// reply is lost.
	FailAfter
	// Reject answers 400 {"error":"ERR injected rejection"} without
	// running the commands.
	Reject
	// Delay waits Fault.Delay (DefaultDelay when 0) before serving the
	// request normally; the commands run even when the client has given up
	// by then.
	Delay
	// DropBefore resets the connection without running the commands.
	DropBefore
	// DropAfter runs the commands, then resets the connection: the reply
	// is lost.
	DropAfter
)

var kindNames = [...]string{"none", "fail-before", "fail-after", "reject", "delay", "drop-before", "drop-after"}

// String returns the kind's name.
func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Fault is one injected fault.
type Fault struct {
	Kind FaultKind
	// Delay is how long a Delay fault waits.
	Delay time.Duration
}

// RandomFaults give each authorized, well-formed request a chance of a
// fault. The shares are probabilities that add up to at most 1.
type RandomFaults struct {
	FailBefore, FailAfter, Delay, DropBefore, DropAfter float64
	// DelayFor is how long a Delay fault waits; DefaultDelay when 0.
	DelayFor time.Duration
	// Seed makes the sequence of faults repeatable.
	Seed uint64
}

// Stats count what the front saw since it started (or since ResetStats).
type Stats struct {
	// Requests is every HTTP request received, whatever became of it.
	Requests int64
	// Single and Pipeline are the authorized, well-formed requests to "/"
	// and "/pipeline".
	Single, Pipeline int64
	// Commands is the number of commands sent to Redis.
	Commands int64
	// Unauthorized is the requests answered 401.
	Unauthorized int64
	// Invalid is the requests refused with 400, 404 or 405 before any
	// command ran (bad content type, body, method or path).
	Invalid int64
	// Faults counts the injected faults by kind.
	Faults map[FaultKind]int64
}

// Server is a running REST front. Its methods are safe for concurrent use.
type Server struct {
	hs       *httptest.Server
	rdb      *redis.Client
	ro       *redis.Client
	token    string
	roToken  string
	maxBytes int64

	mu     sync.Mutex
	queue  []Fault
	random RandomFaults
	rng    *mrand.Rand

	requests, single, pipeline, commands, unauthorized, invalid atomic.Int64
	faults                                                      [len(kindNames)]atomic.Int64
}

// Start starts a front over the redis-server at redisAddr ("host:port")
// and stops it when t ends.
func Start(t testing.TB, redisAddr string, o Options) *Server {
	t.Helper()
	s, err := New(redisAddr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a front over the redis-server at redisAddr. Close stops it.
func New(redisAddr string, o Options) (*Server, error) {
	s := &Server{token: o.Token, roToken: o.ReadOnlyToken, maxBytes: o.MaxRequestBytes}
	if s.token == "" {
		s.token = randomToken()
	}
	if s.roToken == "" {
		s.roToken = randomToken()
	}
	if s.token == s.roToken {
		return nil, errors.New("kvresttest: the token and the read-only token must differ")
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxRequestBytes
	}
	pool := o.PoolSize
	if pool == 0 {
		pool = 128
	}
	ropts := func() *redis.Options {
		return &redis.Options{
			Addr: redisAddr, Protocol: 2, PoolSize: pool, MaxRetries: -1,
			DialTimeout: time.Second, DialerRetries: 1,
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}
	}
	s.rdb = redis.NewClient(ropts())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The read-only user, as Upstash's default_ro: reads only, no SCAN or
	// KEYS. ">" adds a password, so fronts sharing a server coexist.
	roPass := randomToken()
	if err := s.rdb.Do(ctx, "ACL", "SETUSER", readOnlyUser, "on", ">"+roPass, "~*", "-@all", "+@read", "-@dangerous", "-scan").Err(); err != nil {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("kvresttest: create the read-only ACL user on %s: %w", redisAddr, err)
	}
	ro := ropts()
	ro.Username, ro.Password = readOnlyUser, roPass
	s.ro = redis.NewClient(ro)
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.hs.Start() // httptest listens on 127.0.0.1 only
	return s, nil
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "AX" + hex.EncodeToString(b[:])
}

// URL returns the base URL, "http://127.0.0.1:<port>".
func (s *Server) URL() string { return s.hs.URL }

// Host returns "127.0.0.1:<port>".
func (s *Server) Host() string { return strings.TrimPrefix(s.hs.URL, "http://") }

// Token returns the standard token.
func (s *Server) Token() string { return s.token }

// ReadOnlyToken returns the read-only token.
func (s *Server) ReadOnlyToken() string { return s.roToken }

// Close stops the front (waiting for requests in flight) and its Redis
// connections. It does not stop the redis-server.
func (s *Server) Close() {
	s.hs.CloseClientConnections()
	s.hs.Close()
	_ = s.rdb.Close()
	_ = s.ro.Close()
}

// Inject queues faults for the next authorized, well-formed requests, one
// each, in order; they take precedence over random faults.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	s.queue = append(s.queue, faults...)
	s.mu.Unlock()
}

// ClearFaults drops the injected faults not used yet and turns random
// faults off.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.queue = nil
	s.random, s.rng = RandomFaults{}, nil
	s.mu.Unlock()
}

// Pending returns how many injected faults have not been used yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// SetRandomFaults sets the share of requests that get each fault (the zero
// value turns random faults off). It panics when the shares are negative
// or add up to more than 1.
func (s *Server) SetRandomFaults(r RandomFaults) {
	sum := r.FailBefore + r.FailAfter + r.Delay + r.DropBefore + r.DropAfter
	if r.FailBefore < 0 || r.FailAfter < 0 || r.Delay < 0 || r.DropBefore < 0 || r.DropAfter < 0 || sum > 1 {
		panic("kvresttest: fault shares must be ≥ 0 and add up to at most 1")
	}
	s.mu.Lock()
	s.random = r
	s.rng = mrand.New(mrand.NewPCG(r.Seed, r.Seed^0x9e3779b97f4a7c15))
	s.mu.Unlock()
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests: s.requests.Load(), Single: s.single.Load(), Pipeline: s.pipeline.Load(),
		Commands: s.commands.Load(), Unauthorized: s.unauthorized.Load(), Invalid: s.invalid.Load(),
		Faults: map[FaultKind]int64{},
	}
	for k := range s.faults {
		if n := s.faults[k].Load(); n > 0 && k != int(None) {
			st.Faults[FaultKind(k)] = n
		}
	}
	return st
}

// ResetStats sets every count to zero.
func (s *Server) ResetStats() {
	for _, c := range []*atomic.Int64{&s.requests, &s.single, &s.pipeline, &s.commands, &s.unauthorized, &s.invalid} {
		c.Store(0)
	}
	for k := range s.faults {
		s.faults[k].Store(0)
	}
}

// nextFault picks the fault for one request.
func (s *Server) nextFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		return f
	}
	r := s.random
	if s.rng == nil {
		return Fault{}
	}
	x := s.rng.Float64()
	for _, c := range []struct {
		share float64
		kind  FaultKind
	}{{r.FailBefore, FailBefore}, {r.FailAfter, FailAfter}, {r.Delay, Delay}, {r.DropBefore, DropBefore}, {r.DropAfter, DropAfter}} {
		if x < c.share {
			return Fault{Kind: c.kind, Delay: r.DelayFor}
		}
		x -= c.share
	}
	return Fault{}
}

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

// drop hijacks the connection and resets it (SO_LINGER 0), so the client
// sees a connection reset and no answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("kvresttest: the connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic("kvresttest: hijack: " + err.Error())
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
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
