// Package proxy is tokenledger's recording proxy: /proxy/{name}/… is
// forwarded to the upstream named name, the response streams back to the
// client unchanged, and the usage it carries is recorded as one event
// through the same path as POST /api/tokens. docs/capture.md is the
// user's side of it.
package proxy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/capture"
)

// MaxRequestBytes is the largest request body the proxy forwards: it
// reads the body whole, to find the user and whether it streams.
const MaxRequestBytes = 32 << 20

// The headers tokenledger reads from a proxied request and never forwards.
const (
	HeaderUser    = "X-Tokenledger-User"
	HeaderSession = "X-Tokenledger-Session"
	HeaderKey     = "X-Tokenledger-Key"
)

// Options are what the proxy needs. Upstreams and Record are required.
type Options struct {
	Upstreams map[string]Upstream
	// Record logs one event durably (Service.Log, which spools while the
	// database is down).
	Record func(context.Context, tokenledger.Event) error
	// WriteError answers a request the proxy refuses with one sentence.
	WriteError func(w http.ResponseWriter, status int, msg string)
	Logger     *slog.Logger
	// Transport reaches the upstreams; http.DefaultTransport when nil.
	Transport http.RoundTripper
	// Observe, when not nil, is told each forwarded call's upstream and
	// status (502 for an unreachable upstream).
	Observe func(upstream string, code int)
	// UpstreamTimeout bounds a whole upstream call, which goes on when
	// the client leaves so that its usage is still recorded; 10 minutes
	// when zero. Writing the answer to the client is bounded by it too,
	// plus writeMargin, in place of the server's WriteTimeout.
	UpstreamTimeout time.Duration
}

// writeMargin is how long after UpstreamTimeout the answer may still be
// written: enough for the 502 of an upstream that never answered.
const writeMargin = 5 * time.Second

// Proxy forwards and records. Its counters are for /metrics and tests.
type Proxy struct {
	o Options
	// Recorded counts events recorded, Failed recordings that failed,
	// NoUsage responses that carried none, Malformed stream events that
	// could not be read.
	Recorded, Failed, NoUsage, Malformed atomic.Int64
}

// New returns a Proxy over o.
func New(o Options) *Proxy {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 10 * time.Minute
	}
	return &Proxy{o: o}
}

// call is what the proxy knows of one request.
type call struct {
	up            Upstream
	path          string // the upstream path, for the event's metadata
	model         string // the request's model, for a response without one
	user, session string
	injectedUsage bool // the proxy asked for stream_options.include_usage
}

// ServeHTTP forwards r to the upstream named by its path value "name",
// at the path value "rest" with r's query. The mux has decoded the path,
// so an encoded slash or backslash is refused here, where it still shows.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if raw := strings.ToLower(r.URL.EscapedPath()); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		p.o.WriteError(w, http.StatusBadRequest, msgBadPath)
		return
	}
	p.Forward(w, r, r.PathValue("name"), r.PathValue("rest"), r.URL.RawQuery)
}

// Forward forwards r to upstream name at path rest (decoded) with the raw
// query. The call goes to the upstream's host under its base path, and
// nowhere else: a rest that could climb out of the base path is refused.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, name, rest, rawQuery string) {
	up, ok := p.o.Upstreams[name]
	if !ok {
		p.o.WriteError(w, http.StatusNotFound, fmt.Sprintf("There is no upstream named %q; the proxy knows %s", name, names(p.o.Upstreams)))
		return
	}
	if !safeRest(rest) {
		p.o.WriteError(w, http.StatusBadRequest, msgBadPath)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			p.o.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than %d bytes, the most the proxy forwards", MaxRequestBytes))
		} else {
			p.o.WriteError(w, http.StatusBadRequest, "The request body could not be read completely")
		}
		return
	}
	c := &call{up: up, path: "/" + rest}
	c.user, c.session = r.Header.Get(HeaderUser), r.Header.Get(HeaderSession)
	body = c.readRequest(body)
	target := upstreamURL(up.Base, rest)
	target.RawQuery = rawQuery

	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.o.UpstreamTimeout)
	defer cancel()
	// serve's WriteTimeout (60 s) fits the API's own answers, not a model
	// streaming for minutes: the answer may take as long as the upstream
	// call may, and a client that stops reading is cut off after that.
	// A writer without deadlines (a serverless runtime) keeps its own.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(p.o.UpstreamTimeout + writeMargin))
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out = pr.Out.WithContext(ctx)
			pr.Out.URL, pr.Out.Host = target, ""
			pr.Out.Body, pr.Out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			pr.Out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			pr.Out.Header.Del("Content-Length") // the transport writes the body's own
			for _, h := range []string{HeaderUser, HeaderSession, HeaderKey, "Accept-Encoding"} {
				pr.Out.Header.Del(h)
			}
		},
		Transport: p.o.Transport,
		ModifyResponse: func(res *http.Response) error {
			p.observe(up.Name, res.StatusCode)
			p.watch(c, res)
			return nil
		},
		ErrorHandler: p.unreachable(up),
		ErrorLog:     slog.NewLogLogger(p.o.Logger.Handler(), slog.LevelDebug),
	}
	rp.ServeHTTP(w, r)
}

// msgBadPath is the answer to a path that could leave the upstream's base.
const msgBadPath = "The path after /proxy/{name}/ may not have an empty, . or .. segment, a backslash, or an encoded slash, backslash or dot; nothing was forwarded"

// safeRest reports whether rest, a decoded path below an upstream's
// base, stays below it however the upstream reads it: no "." or ".."
// segment (nor "..;", which Tomcat reads as ".."), no empty one (a
// leading "//" names a host), no backslash (which some servers take for
// a slash), and no %2F, %5C or %2E left after decoding (which an upstream
// that decodes twice would turn into a slash, backslash or dot).
func safeRest(rest string) bool {
	if strings.ContainsRune(rest, '\\') || strings.Contains("/"+rest, "//") {
		return false
	}
	lower := strings.ToLower(rest)
	for _, enc := range []string{"%2f", "%5c", "%2e"} {
		if strings.Contains(lower, enc) {
			return false
		}
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg, _, _ = strings.Cut(seg, ";"); seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// upstreamURL is base with rest appended to its path. rest is decoded,
// so it is escaped here once (url.URL.JoinPath would decode it again: a
// client's %25 would become an escape of its own).
func upstreamURL(base *url.URL, rest string) *url.URL {
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + "/" + rest
	u.RawPath = ""
	if base.RawPath != "" { // keep the base's own escaping
		u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + "/" + (&url.URL{Path: rest}).EscapedPath()
	}
	return &u
}

// readRequest takes what the request body says about the call: its
// model, its user when no header gave one (OpenAI's user, Anthropic's
// metadata.user_id), and whether it streams Chat Completions without
// usage, in which case it returns the body asking for usage.
func (c *call) readRequest(body []byte) []byte {
	var req struct {
		Model    string `json:"model"`
		User     string `json:"user"`
		Metadata struct {
			UserID string `json:"user_id"`
		} `json:"metadata"`
		Stream        bool `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if json.Unmarshal(body, &req) != nil {
		c.model = modelInPath(c.path)
		return body
	}
	c.model = cmp.Or(req.Model, modelInPath(c.path))
	c.user = cmp.Or(c.user, req.User, req.Metadata.UserID)
	if c.up.Kind != capture.OpenAI || !strings.HasSuffix(c.path, "/chat/completions") || !req.Stream ||
		(req.StreamOptions != nil && req.StreamOptions.IncludeUsage) {
		return body
	}
	withUsage, err := setIncludeUsage(body)
	if err != nil {
		return body
	}
	c.injectedUsage = true
	return withUsage
}

// setIncludeUsage returns the JSON object body with
// stream_options.include_usage set to true, its other members kept.
func setIncludeUsage(body []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, err
	}
	opts := map[string]json.RawMessage{}
	if raw, ok := obj["stream_options"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &opts); err != nil {
			return nil, err
		}
	}
	opts["include_usage"] = json.RawMessage("true")
	b, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	obj["stream_options"] = b
	return json.Marshal(obj)
}

// modelInPath returns the model of a Gemini path
// (…/models/gemini-2.5-flash:generateContent), or "".
func modelInPath(p string) string {
	_, after, ok := strings.Cut(p, "/models/")
	if !ok {
		return ""
	}
	model, _, _ := strings.Cut(after, ":")
	model, _, _ = strings.Cut(model, "/")
	return model
}

// unreachable answers 502 with a sentence naming the upstream. The
// error's URL is left out: a Gemini key may sit in its query.
func (p *Proxy) unreachable(up Upstream) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		p.observe(up.Name, http.StatusBadGateway)
		p.o.Logger.Warn("proxy: upstream unreachable", "upstream", up.Name, "err", err)
		p.o.WriteError(w, http.StatusBadGateway, fmt.Sprintf("The upstream %s (%s) could not be reached: %v", up.Name, up.Base.Redacted(), err))
	}
}

func (p *Proxy) observe(upstream string, code int) {
	if p.o.Observe != nil {
		p.o.Observe(upstream, code)
	}
}
