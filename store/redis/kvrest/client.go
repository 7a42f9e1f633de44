// Package kvrest is the REST transport of the Redis store (store/redis),
// for Vercel KV and Upstash Redis: it POSTs pipelines of commands as JSON
// and reads their answers, trying a call again when its answer was lost.
// It knows nothing of tokenledger. docs/redis.md, "Transports".
package kvrest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// DefaultTimeout bounds one call (all its attempts and the waits between
// them) when no other timeout is configured: an unreachable or hung REST
// API makes a call fail after about this long instead of hanging it.
const DefaultTimeout = 2 * time.Second

// DefaultMaxAttempts is how many times a call is tried when no other
// number is configured: the first attempt and up to three retries.
const DefaultMaxAttempts = 4

// Backoff between attempts: exponential from backoffBase, capped at
// backoffCap, with jitter (each wait is drawn from [d/2, d]).
const (
	backoffBase = 50 * time.Millisecond
	backoffCap  = time.Second
)

// maxResponseBytes bounds the body of one answer.
const maxResponseBytes = 64 << 20

// Errors that callers match with errors.Is.
var (
	// ErrTokenRejected marks an answer 401 Unauthorized: the REST API
	// refused the token (wrong, revoked, or the database password instead
	// of the REST token). It is never retried.
	ErrTokenRejected = errors.New("the REST token was rejected")

	// ErrQuotaExceeded marks a call refused because the database reached a
	// limit of its plan (Upstash's "ERR max daily request limit exceeded",
	// "ERR max requests limit exceeded", "ERR DB capacity quota exceeded",
	// "ERR max concurrent connections exceeded"): the database cannot
	// serve until the limit resets or the plan changes. It is not retried.
	ErrQuotaExceeded = errors.New("the database reached a limit of its plan")

	// ErrReadOnly marks a write refused locally because the client (or
	// store) holds only a read-only token. Nothing was sent.
	ErrReadOnly = errors.New("only a read-only token is configured, which is never used to write")
)

// readCommands are the commands a read-only client sends: the reads the
// stores need, and a few more of Redis's @read category. Every other
// command is refused before anything is sent.
var readCommands = map[string]bool{
	"GET": true, "MGET": true, "STRLEN": true, "EXISTS": true, "TYPE": true,
	"TTL": true, "PTTL": true, "EXPIRETIME": true, "PEXPIRETIME": true,
	"HGET": true, "HMGET": true, "HGETALL": true, "HLEN": true, "HEXISTS": true,
	"SCARD": true, "SISMEMBER": true, "SMISMEMBER": true, "SMEMBERS": true,
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// URL is the REST API's base URL, e.g. https://example.upstash.io
	// (KV_REST_API_URL or UPSTASH_REDIS_REST_URL). Surrounding white space
	// and a trailing slash are dropped. It must not carry credentials.
	URL string
	// Token is the REST token (KV_REST_API_TOKEN or
	// UPSTASH_REDIS_REST_TOKEN), sent as "Authorization: Bearer <token>".
	// Surrounding white space is dropped.
	Token string
	// ReadOnly says Token is a read-only token (KV_REST_API_READ_ONLY_TOKEN):
	// the client then refuses, without sending anything, every command
	// that is not a plain read.
	ReadOnly bool
	// Timeout bounds one call, retries included; DefaultTimeout when 0.
	// A shorter deadline of the caller's context wins.
	Timeout time.Duration
	// MaxAttempts is how many times a call is tried at most;
	// DefaultMaxAttempts when 0.
	MaxAttempts int
	// HTTPClient sends the requests; when nil the client makes its own,
	// with keep-alive connections for 128 concurrent calls and no
	// redirects followed.
	HTTPClient *http.Client
}

// Client speaks the Upstash Redis REST protocol (also Vercel KV's), one
// HTTP request per pipeline. A call that gets no answer, or an answer 429
// or 5xx, is tried again after a backoff while attempts and time remain
// (docs/redis.md, "Kind kv-rest"), so send only commands that are safe to
// repeat. It is a wire.Pipeline, safe for concurrent use.
type Client struct {
	base     string // base URL without a trailing slash
	host     string
	token    string
	auth     string // "Bearer <token>"
	readOnly bool
	timeout  time.Duration
	attempts int
	hc       *http.Client
	own      *http.Transport // the transport the client made, or nil
}

var _ wire.Pipeline = (*Client)(nil)

// NewClient checks o and returns a Client, without touching the network.
// Its errors never repeat the token.
func NewClient(o ClientOptions) (*Client, error) {
	raw := strings.TrimSpace(o.URL)
	token := strings.TrimSpace(o.Token)
	if raw == "" {
		return nil, errors.New("kv rest: the REST API URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("kv rest: the REST API URL must be an https:// (or http://) URL with a host, such as https://example.upstash.io")
	}
	if u.User != nil {
		return nil, fmt.Errorf("kv rest: the REST API URL for %s must not carry credentials; the token goes in the token setting", u.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("kv rest: the REST API URL for %s must not have a query or fragment", u.Host)
	}
	if token == "" {
		return nil, fmt.Errorf("kv rest: a REST token for %s is required", u.Host)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return nil, fmt.Errorf("kv rest: the REST token for %s contains white space; copy it again from the database's REST section", u.Host)
	}
	if o.Timeout < 0 {
		return nil, errors.New("kv rest: the timeout must not be negative")
	}
	if o.MaxAttempts < 0 {
		return nil, errors.New("kv rest: the number of attempts must not be negative")
	}
	c := &Client{
		base:     strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"),
		host:     u.Host,
		token:    token,
		auth:     "Bearer " + token,
		readOnly: o.ReadOnly,
		timeout:  o.Timeout,
		attempts: o.MaxAttempts,
		hc:       o.HTTPClient,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.attempts == 0 {
		c.attempts = DefaultMaxAttempts
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 128
		t.MaxIdleConnsPerHost = 128
		t.IdleConnTimeout = 90 * time.Second
		c.own = t
		c.hc = &http.Client{
			Transport: t,
			// A redirect would carry the token to another URL (or drop
			// it); the answer is reported instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c, nil
}

// Host returns the host (and port, when the URL names one) of the REST
// API: what errors and StoreInfo name. It never holds a secret.
func (c *Client) Host() string { return c.host }

// URL returns the base URL, without a trailing slash. It never holds a
// secret.
func (c *Client) URL() string { return c.base }

// ReadOnly reports whether the client holds a read-only token.
func (c *Client) ReadOnly() bool { return c.readOnly }

// CloseIdleConnections closes the keep-alive connections of the client's
// own transport (not of a configured HTTPClient).
func (c *Client) CloseIdleConnections() {
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
}

// Error is a REST call that failed as a whole. Its message says what
// happened, without the host (the store names it) and never with the
// token.
type Error struct {
	// Path is "/" for a single command, "/pipeline" for several.
	Path string
	// Status is the HTTP status of the last answer, 0 when none came.
	Status int
	// Attempts is how many requests were sent.
	Attempts int
	// Msg says what happened.
	Msg string
	// Err is the underlying error (ErrTokenRejected, ErrReadOnly, a
	// network error, the context's error), or nil.
	Err error
}

// Error returns "POST <path>: <what happened>".
func (e *Error) Error() string { return "POST " + e.Path + ": " + e.Msg }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// errCallTimeout is the cause of a call's own timeout.
var errCallTimeout = errors.New("kv rest call timeout")

// WithTimeout bounds ctx by the client's timeout, for a caller that makes
// several calls under one deadline (the store's Add, which sends the
// script again after NOSCRIPT). TimedOut tells whether such a ctx ended by
// that timeout rather than by the caller's.
func (c *Client) WithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
}

// TimedOut reports whether ctx, from WithTimeout, ended by the client's
// timeout.
func TimedOut(ctx context.Context) bool { return ownTimeout(ctx) }

// Timeout returns the bound of one call, retries included.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Do sends cmds in one request and returns one reply per command, as
// wire.Pipeline describes: an int64, a string, nil, a []any or a
// wire.ReplyError (the command's own error, such as NOSCRIPT). One
// command is POSTed to the base URL, several to /pipeline. Arguments are
// strings (valid UTF-8) or integers; integers are sent as decimal text.
//
// The error is non-nil only when the call failed as a whole; it is then an
// *Error wrapping ErrTokenRejected for a 401, ErrReadOnly for a write on a
// read-only client, or the context's error when ctx ended.
func (c *Client) Do(ctx context.Context, cmds [][]any) ([]any, error) {
	path := "/"
	if len(cmds) != 1 {
		path = "/pipeline"
	}
	if len(cmds) == 0 {
		return []any{}, nil
	}
	if c.readOnly {
		for _, cmd := range cmds {
			name := ""
			if len(cmd) > 0 {
				name, _ = cmd[0].(string)
			}
			if !readCommands[strings.ToUpper(name)] {
				return nil, &Error{Path: path, Msg: fmt.Sprintf("refused to send %s: %v", strings.ToUpper(name), ErrReadOnly), Err: ErrReadOnly}
			}
		}
	}
	body, err := encodeCommands(cmds)
	if err != nil {
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Path: path, Msg: err.Error(), Err: err}
	}
	start := time.Now()
	actx, cancel := context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
	defer cancel()
	target := c.base // Go sends "/" for an empty path
	if len(cmds) != 1 {
		target += path
	}
	var last attemptResult
	for attempt := 1; ; attempt++ {
		last = c.attempt(actx, target, body, len(cmds))
		if last.err == nil {
			return last.replies, nil
		}
		if err := ctx.Err(); err != nil && !ownTimeout(ctx) {
			return nil, &Error{Path: path, Status: last.status, Attempts: attempt, Msg: err.Error(), Err: err}
		}
		if actx.Err() != nil {
			return nil, c.timedOut(path, attempt, last)
		}
		if !last.retry {
			return nil, c.fail(path, attempt, last, "")
		}
		if attempt >= c.attempts {
			return nil, c.fail(path, attempt, last, fmt.Sprintf("failed %s in %s", times(attempt), time.Since(start).Round(time.Millisecond)))
		}
		wait := backoff(attempt)
		if last.retryAfter > wait {
			wait = last.retryAfter
		}
		if dl, ok := actx.Deadline(); ok && time.Until(dl) < wait {
			return nil, c.fail(path, attempt, last, fmt.Sprintf("failed %s, and too little time is left for another attempt", times(attempt)))
		}
		t := time.NewTimer(wait)
		select {
		case <-actx.Done():
			t.Stop()
			if err := ctx.Err(); err != nil && !ownTimeout(ctx) {
				return nil, &Error{Path: path, Status: last.status, Attempts: attempt, Msg: err.Error(), Err: err}
			}
			return nil, c.timedOut(path, attempt, last)
		case <-t.C:
		}
	}
}

// times returns "once" or "<n> times".
func times(n int) string {
	if n == 1 {
		return "once"
	}
	return strconv.Itoa(n) + " times"
}

// fail builds the error of a failed call from its last attempt.
func (c *Client) fail(path string, attempts int, last attemptResult, prefix string) *Error {
	msg := last.err.Error()
	if prefix != "" {
		msg = prefix + ": " + msg
	}
	return &Error{Path: path, Status: last.status, Attempts: attempts, Msg: msg, Err: last.cause}
}

// ownTimeout reports whether ctx ended because of the client's own
// timeout, set around several calls (see WithTimeout), rather than
// because the caller gave up.
func ownTimeout(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errCallTimeout)
}

// timedOut builds the error of a call that ran out of its own time.
func (c *Client) timedOut(path string, attempts int, last attemptResult) *Error {
	e := &Error{Path: path, Status: last.status, Attempts: attempts, Err: last.cause}
	what := "attempt"
	if attempts > 1 {
		what = "attempts"
	}
	e.Msg = fmt.Sprintf("no answer within the %s timeout (%d %s)", c.timeout, attempts, what)
	if !errors.Is(last.err, errCallTimeout) && !errors.Is(last.err, context.DeadlineExceeded) {
		e.Msg += "; the last one: " + last.err.Error()
	}
	return e
}
