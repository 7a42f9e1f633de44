package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokenledger/tokenledger"
)

// Outcome is what an answer says about the events of a request.
type Outcome int

const (
	// Stored: the service acknowledged every event (HTTP 200): each is
	// counted exactly once, whether this request or an earlier one counted
	// it.
	Stored Outcome = iota
	// Rejected: the service refused the request and stored nothing (HTTP
	// 4xx, a validation error).
	Rejected
	// Unknown: no answer, or an answer that does not say (a timeout, a
	// broken connection, HTTP 5xx — a batch may fail half-way): some events
	// may have been counted. Sending them again settles it.
	Unknown
)

// Answer is the outcome of one request.
type Answer struct {
	Outcome Outcome
	// Accepted and Duplicates are the service's counts for a Stored
	// answer.
	Accepted, Duplicates int
	// Kind names the error for anything but a clean Stored answer, such as
	// "HTTP 503", "timeout", "connection refused"; "" otherwise.
	Kind string
	// Detail is one line about the error, for the first of each kind.
	Detail string
	// Fatal stops the run: retrying cannot help (such as HTTP 401 or
	// 403, a missing or wrong API key).
	Fatal bool
}

// Totals are the per-model and per-user totals a service reports over
// its last days.
type Totals struct {
	Models map[string]tokenledger.Totals
	Users  map[string]tokenledger.Totals
}

// Target is a tokenledger that a load run drives.
type Target interface {
	// Send logs one request's events. body is their JSON (one object, or
	// an array for more than one); events are the same events decoded.
	Send(ctx context.Context, body []byte, events func() []tokenledger.Event) Answer
	// Totals reads the per-model and per-user totals of the last days
	// (today included).
	Totals(ctx context.Context, days int) (Totals, error)
	// Describe names the target for the report, without secrets.
	Describe() string
}

// HTTP drives a running tokenledger over its HTTP API.
type HTTP struct {
	endpoint string // .../api/tokens
	apiKey   string
	client   *http.Client
}

// NewHTTP returns a Target for the tokenledger at base (http://host:port,
// or its /api/tokens URL). apiKey, when not empty, is sent as
// "Authorization: Bearer <key>" with every request. conns is how many
// connections to keep open (the number of clients); timeout bounds each
// request.
func NewHTTP(base, apiKey string, conns int, timeout time.Duration) (*HTTP, error) {
	u, err := ServerURL(base)
	if err != nil {
		return nil, err
	}
	u.Path += "/api/tokens"
	tr := &http.Transport{
		Proxy:               nil, // the target is named exactly; never a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSHandshakeTimeout: min(timeout, 10*time.Second),
	}
	return &HTTP{endpoint: u.String(), apiKey: apiKey, client: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// ServerURL checks base, the URL of a running tokenledger (http://host:port,
// a path prefix it is served under, or its /api/tokens URL), and returns
// it without a trailing slash or /api/tokens, ready for a route to be
// appended. Credentials, a query and a fragment are refused: the key is
// sent in a header, never in the URL.
func ServerURL(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("must be an http:// or https:// URL of a tokenledger, such as http://127.0.0.1:8080, without credentials or query")
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/tokens")
	u.RawPath = ""
	return u, nil
}

// Describe returns the endpoint.
func (h *HTTP) Describe() string { return h.endpoint }

// Close closes idle connections.
func (h *HTTP) Close() { h.client.CloseIdleConnections() }

// Send POSTs body to /api/tokens.
func (h *HTTP) Send(ctx context.Context, body []byte, _ func() []tokenledger.Event) Answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.endpoint, bytes.NewReader(body))
	if err != nil {
		return Answer{Outcome: Rejected, Kind: "bad request", Detail: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if h.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+h.apiKey)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		kind := netKind(err)
		return Answer{Outcome: Unknown, Kind: kind, Detail: err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		a := Answer{Outcome: Unknown, Kind: "HTTP " + strconv.Itoa(resp.StatusCode), Detail: errorSentence(raw)}
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			// The contract: an error never stores anything; only a 5xx
			// may leave a batch half counted.
			a.Outcome = Rejected
		}
		a.Fatal = resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
		return a
	}
	if err != nil {
		return Answer{Outcome: Unknown, Kind: netKind(err), Detail: "reading the answer: " + err.Error()}
	}
	accepted, duplicates, ok := readCounts(raw)
	if !ok {
		return Answer{Outcome: Unknown, Kind: "bad answer", Detail: fmt.Sprintf("HTTP 200 without accepted and duplicates: %.120s", raw)}
	}
	return Answer{Outcome: Stored, Accepted: accepted, Duplicates: duplicates}
}

// readCounts reads accepted and duplicates from a JSON object, token by
// token, and stops once it has both: the server writes them first, so the
// rest of the answer (an id and a cost per event, most of its bytes) is
// not parsed, which took about 40 % of the load generator's CPU in batches
// of 1,000. Members before them are skipped whole; the totals check after
// the run, not the answer's syntax, is what proves the counts.
func readCounts(raw []byte) (accepted, duplicates int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, false
	}
	var haveA, haveD bool
	for dec.More() && !(haveA && haveD) {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		key, _ := t.(string)
		var dst *int
		switch key {
		case "accepted":
			dst, haveA = &accepted, true
		case "duplicates":
			dst, haveD = &duplicates, true
		default:
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return 0, 0, false
			}
			continue
		}
		v, err := dec.Token()
		n, isNum := v.(json.Number)
		if err != nil || !isNum {
			return 0, 0, false
		}
		i, err := strconv.Atoi(n.String())
		if err != nil {
			return 0, 0, false
		}
		*dst = i
	}
	return accepted, duplicates, haveA && haveD
}

// errorSentence returns the "error" of a JSON error answer, or the start
// of the body.
func errorSentence(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	return fmt.Sprintf("%.120s", raw)
}

// netKind names a transport error.
func netKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	}
	return "network error"
}

// Totals reads GET /api/tokens?action=models and action=users over days.
func (h *HTTP) Totals(ctx context.Context, days int) (Totals, error) {
	var t Totals
	var models struct {
		Models []tokenledger.ModelTotals `json:"models"`
	}
	if err := h.get(ctx, "models", days, &models); err != nil {
		return t, err
	}
	var users struct {
		Users []tokenledger.UserTotals `json:"users"`
	}
	if err := h.get(ctx, "users", days, &users); err != nil {
		return t, err
	}
	t.Models = make(map[string]tokenledger.Totals, len(models.Models))
	for _, m := range models.Models {
		t.Models[m.Model] = m.Totals
	}
	t.Users = make(map[string]tokenledger.Totals, len(users.Users))
	for _, u := range users.Users {
		t.Users[u.UserID] = u.Totals
	}
	return t, nil
}

// ReadError is a failed read of the totals; Status is the HTTP status (0
// when there was no answer).
type ReadError struct {
	Status int
	Msg    string
}

func (e *ReadError) Error() string { return e.Msg }

// get reads GET /api/tokens?action=<action>&days=<days> into v.
func (h *HTTP) get(ctx context.Context, action string, days int, v any) error {
	u := h.endpoint + "?action=" + action + "&days=" + strconv.Itoa(days)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if h.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+h.apiKey)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return &ReadError{Msg: fmt.Sprintf("GET %s: %s", action, netKind(err))}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return &ReadError{Msg: fmt.Sprintf("GET ?action=%s: reading the answer: %s", action, netKind(err))}
	}
	if resp.StatusCode != http.StatusOK {
		return &ReadError{Status: resp.StatusCode, Msg: fmt.Sprintf("GET ?action=%s answered HTTP %d: %s", action, resp.StatusCode, errorSentence(raw))}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return &ReadError{Status: resp.StatusCode, Msg: fmt.Sprintf("GET ?action=%s: the answer is not the documented JSON: %v", action, err)}
	}
	return nil
}

// Service drives a tokenledger.Service directly (the configured store,
// without HTTP).
type Service struct {
	svc  *tokenledger.Service
	desc string
}

// NewService returns a Target on svc; desc names the store.
func NewService(svc *tokenledger.Service, desc string) *Service {
	return &Service{svc: svc, desc: desc}
}

// Describe names the store.
func (s *Service) Describe() string { return s.desc }

// Send logs the events through Service.Log.
func (s *Service) Send(ctx context.Context, _ []byte, events func() []tokenledger.Event) Answer {
	res, err := s.svc.Log(ctx, events())
	if err == nil {
		return Answer{Outcome: Stored, Accepted: res.Accepted, Duplicates: res.Duplicates}
	}
	var ve *tokenledger.ValidationError
	switch {
	case errors.As(err, &ve):
		return Answer{Outcome: Rejected, Kind: "invalid", Detail: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return Answer{Outcome: Unknown, Kind: "timeout", Detail: err.Error()}
	case errors.Is(err, tokenledger.ErrUnavailable):
		return Answer{Outcome: Unknown, Kind: "unavailable", Detail: err.Error()}
	}
	return Answer{Outcome: Unknown, Kind: "error", Detail: err.Error()}
}

// Totals reads Service.Models and Service.Users.
func (s *Service) Totals(ctx context.Context, days int) (Totals, error) {
	models, err := s.svc.Models(ctx, days)
	if err != nil {
		return Totals{}, err
	}
	users, err := s.svc.Users(ctx, days)
	if err != nil {
		return Totals{}, err
	}
	t := Totals{Models: make(map[string]tokenledger.Totals, len(models)), Users: make(map[string]tokenledger.Totals, len(users))}
	for _, m := range models {
		t.Models[m.Model] = m.Totals
	}
	for _, u := range users {
		t.Users[u.UserID] = u.Totals
	}
	return t, nil
}
