package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/redact"
)

// Sentences of errors that are not about the request's content.
const (
	msgUnavailable = "Storage is unavailable right now; try again later"
	msgInternal    = "Internal error; the details are in the server log"
)

// errorBody is every error answer: {"error": "...", "field": "...", "index": n}.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Index *int   `json:"index,omitempty"`
}

// encode writes v as a JSON answer with the given status. HTML
// characters are not escaped (messages such as "Bearer <key>" stay
// readable); the answer is never sniffed as HTML (nosniff).
func encode(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value encoded here is built by this package from plain
		// types; a failure is a bug, answered without a body.
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	writeJSON(w, status, b.Bytes())
}

// writeJSON writes body, already encoded, as a JSON answer with status.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	encode(w, status, errorBody{Error: msg})
}

// WriteError is writeError for the packages whose answers share the
// API's error shape (the proxy).
func WriteError(w http.ResponseWriter, status int, msg string) { writeError(w, status, msg) }

// maxFieldEcho is the longest field name an error answer repeats.
const maxFieldEcho = 64

// writeValidation writes a *tokenledger.ValidationError as 400 with its
// field and index.
//
// A field name comes from the request (an unknown or repeated key) and
// may be up to the whole body long; it is cut to maxFieldEcho characters,
// so that an answer never repeats more than a few hundred bytes of what
// the client sent.
func writeValidation(w http.ResponseWriter, ve *tokenledger.ValidationError) {
	if len(ve.Field) > maxFieldEcho {
		short := *ve
		short.Field = truncate(ve.Field, maxFieldEcho)
		ve = &short
	}
	body := errorBody{Error: ve.Error(), Field: ve.Field}
	if ve.Index >= 0 {
		i := ve.Index
		body.Index = &i
	}
	encode(w, http.StatusBadRequest, body)
}

// writeServiceError answers an error from the Service: 400 for a
// validation error or a day whose counter would overflow, 503 when the store is unavailable, closed or did not
// answer in time, 500 (details only in the log) for anything else.
func (s *server) writeServiceError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ve *tokenledger.ValidationError
	var oe *tokenledger.CounterOverflowError
	switch {
	case errors.As(err, &ve):
		writeValidation(w, ve)
	case errors.As(err, &oe):
		// The events are valid, but the day cannot count them: the
		// request is refused whole, like any bad request.
		writeError(w, http.StatusBadRequest, oe.Error())
	case errors.Is(err, tokenledger.ErrUnavailable), errors.Is(err, tokenledger.ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		s.logRefusal(r.Context(), slog.LevelWarn, what+": storage unavailable",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", s.redact(err.Error())))
		msg := msgUnavailable
		if ue := (*tokenledger.UnavailableError)(nil); errors.As(err, &ue) {
			msg = s.redact(ue.Msg) // written for callers, redacted all the same
		}
		writeError(w, http.StatusServiceUnavailable, msg)
	default:
		s.logRefusal(r.Context(), slog.LevelError, what+" failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", s.redact(err.Error())))
		writeError(w, http.StatusInternalServerError, msgInternal)
	}
}

// redact removes every configured secret from msg.
func (s *server) redact(msg string) string { return redact.String(msg, s.Secrets) }

// errBodyTooLarge is returned by decodeBody for a body over MaxBodyBytes.
var errBodyTooLarge = fmt.Errorf("the body is larger than 1 MiB (%d bytes)", MaxBodyBytes)

// checkJSONContentType returns a sentence when r's Content-Type is not
// application/json (a charset parameter, if any, must be utf-8).
func checkJSONContentType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "Content-Type must be application/json"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Sprintf("Content-Type must be application/json, not %s", truncate(ct, 60))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "Content-Type must be application/json with charset utf-8 (or no charset)"
	}
	return ""
}

// checkIdentityEncoding returns a sentence when r's body is declared
// compressed: every Content-Encoding, if any, must be identity. The body
// is never decompressed, so a compressed one would be refused as "not
// valid UTF-8" and a plain one labelled compressed would be stored: both
// are refused with what to do instead.
func checkIdentityEncoding(r *http.Request) string {
	values := r.Header.Values("Content-Encoding")
	for _, v := range values {
		for coding := range strings.SplitSeq(v, ",") {
			if c := strings.TrimSpace(coding); c != "" && !strings.EqualFold(c, "identity") {
				return "The body must be sent uncompressed: Content-Encoding must be absent or identity, not " + truncate(strings.Join(values, ", "), 60)
			}
		}
	}
	return ""
}

// decodeBody reads at most MaxBodyBytes of r's body and parses it into
// events with tokenledger.DecodeEvents. It returns errBodyTooLarge, a
// *tokenledger.ValidationError, or an error reading the body.
func decodeBody(w http.ResponseWriter, r *http.Request) ([]tokenledger.Event, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, errBodyTooLarge
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	return tokenledger.DecodeEvents(body)
}

// readBody reads all of rd. A declared length (Content-Length, which
// net/http holds the body to) sizes the buffer once, where io.ReadAll
// would grow it by copies: a third of the bytes serve allocated under
// batches of 1,000 events. The caller bounds declared by MaxBodyBytes, so
// a client that declares more than it sends holds no more memory than one
// that sends it (until the server's read timeout).
func readBody(rd io.Reader, declared int64) ([]byte, error) {
	if declared <= 0 {
		return io.ReadAll(rd)
	}
	buf := bytes.NewBuffer(make([]byte, 0, declared+bytes.MinRead))
	_, err := buf.ReadFrom(rd)
	return buf.Bytes(), err
}

// truncate shortens s for use inside an error message.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
