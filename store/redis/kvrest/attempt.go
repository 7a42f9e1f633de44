package kvrest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// backoff returns the wait before retry number n (1 for the first retry):
// backoffBase·2^(n−1), capped at backoffCap, drawn from [d/2, d].
func backoff(n int) time.Duration {
	d := backoffCap
	if n < 8 {
		d = min(backoffCap, backoffBase<<(n-1))
	}
	return d/2 + rand.N(d/2+1)
}

// attemptResult is what one request gave.
type attemptResult struct {
	replies    []any
	err        error // what went wrong, nil on success
	cause      error // the sentinel or underlying error to wrap, if any
	status     int
	retry      bool          // worth another attempt
	retryAfter time.Duration // the server's Retry-After, 0 when none
}

// quotaMessages are the parts of the Upstash error messages that mean a
// plan limit was reached (see ErrQuotaExceeded).
var quotaMessages = []string{
	"request limit exceeded", "requests limit exceeded",
	"quota exceeded", "concurrent connections exceeded",
}

// isQuota reports whether a server's error message says a plan limit was
// reached.
func isQuota(msg string) bool {
	msg = strings.ToLower(msg)
	for _, q := range quotaMessages {
		if strings.Contains(msg, q) {
			return true
		}
	}
	return false
}

// quotaError returns the message of the first reply, or of the error body,
// that says a plan limit was reached.
func quotaError(replies []any, data []byte) (string, bool) {
	for _, r := range replies {
		if e, ok := r.(wire.ReplyError); ok && isQuota(string(e)) {
			return string(e), true
		}
	}
	if msg, ok := errorBody(data); ok && isQuota(msg) {
		return msg, true
	}
	return "", false
}

// attempt sends one request with a fresh body reader.
func (c *Client) attempt(ctx context.Context, target string, body []byte, n int) attemptResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: err}
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		err = netError(err)
		return attemptResult{err: err, cause: err, retry: true}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		// The reply was lost on the way: the commands may have run.
		err = fmt.Errorf("the answer (%s) was cut off: %w", resp.Status, netError(err))
		return attemptResult{err: err, cause: err, status: resp.StatusCode, retry: true}
	}
	if len(data) > maxResponseBytes {
		return attemptResult{err: fmt.Errorf("the answer is larger than %d bytes", maxResponseBytes), status: resp.StatusCode}
	}
	st := resp.StatusCode
	res := c.classify(resp, data, n)
	if res.cause == nil { // a plan limit is final, whatever the status
		if msg, ok := quotaError(res.replies, data); ok {
			return attemptResult{status: st, cause: ErrQuotaExceeded,
				err: fmt.Errorf("%w (%s: %s)", ErrQuotaExceeded, resp.Status, c.scrub(msg))}
		}
	}
	return res
}

// classify reads one answer: its replies, or what went wrong and whether
// another attempt is worth it.
func (c *Client) classify(resp *http.Response, data []byte, n int) attemptResult {
	st := resp.StatusCode
	res := attemptResult{status: st}
	switch {
	case st == http.StatusOK:
		replies, err := decodeReplies(data, n)
		if err != nil {
			// A garbled 200 (a proxy's page, a cut-off body) is treated
			// as a lost reply.
			res.err, res.retry = fmt.Errorf("the answer %s", err), true
			return res
		}
		for i, r := range replies { // an inline error may echo the token too
			if e, ok := r.(wire.ReplyError); ok {
				replies[i] = wire.ReplyError(c.scrub(string(e)))
			}
		}
		res.replies = replies
		return res
	case st == http.StatusBadRequest:
		// The command (or, for a pipeline, the request) failed; the
		// message is the Redis error, e.g. "NOSCRIPT …" or "ERR …".
		if msg, ok := errorBody(data); ok {
			res.replies = make([]any, n)
			for i := range res.replies {
				res.replies[i] = wire.ReplyError(c.scrub(msg))
			}
			return res
		}
		res.err = fmt.Errorf("answered %s: %s", resp.Status, c.snippet(data))
	case st == http.StatusUnauthorized:
		res.err = fmt.Errorf("%w (%s: %s); use the database's REST token (KV_REST_API_TOKEN), not its password", ErrTokenRejected, resp.Status, c.snippet(data))
		res.cause = ErrTokenRejected
	case st == http.StatusTooManyRequests || st >= 500:
		res.err = fmt.Errorf("answered %s: %s", resp.Status, c.snippet(data))
		res.retry = true
		if ra, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && ra >= 0 {
			res.retryAfter = time.Duration(ra) * time.Second
		}
	case st == http.StatusNotFound || st == http.StatusMethodNotAllowed:
		res.err = fmt.Errorf("answered %s: %s; is the URL the database's REST URL (KV_REST_API_URL)?", resp.Status, c.snippet(data))
	case st >= 300 && st < 400:
		res.err = fmt.Errorf("answered %s (a redirect to %q, not followed); use the URL it names", resp.Status, resp.Header.Get("Location"))
	default:
		res.err = fmt.Errorf("answered %s: %s", resp.Status, c.snippet(data))
	}
	return res
}

// netError drops the *url.Error wrapper, whose text repeats the URL.
func netError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timed out: %w", err)
	}
	return err
}

// scrub removes the token from a message the server sent, in case it
// echoes it.
func (c *Client) scrub(s string) string {
	return strings.ReplaceAll(s, c.token, "[token]")
}

// snippet returns the server's error message from an answer body, or the
// start of the body, cleaned for one line of an error message.
func (c *Client) snippet(data []byte) string {
	s, ok := errorBody(data)
	if !ok {
		s = string(data)
	}
	s = c.scrub(strings.Join(strings.Fields(s), " "))
	if s == "" {
		return "(empty body)"
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) { // never split a character
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// errorBody returns the message of an {"error": "…"} body.
func errorBody(data []byte) (string, bool) {
	var a struct {
		Error *string `json:"error"`
	}
	if json.Unmarshal(data, &a) != nil || a.Error == nil {
		return "", false
	}
	return *a.Error, true
}
