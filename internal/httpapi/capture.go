package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/capture"
	"github.com/tokenledger/tokenledger/internal/proxy"
)

// handleProxy forwards /proxy/{name}/{rest...} through d.Proxy. The
// proxy is off (404 with the sentence that says how to turn it on) when
// d.Proxy is nil. With an API key configured, a proxied call must carry
// it in X-Tokenledger-Key: the app's Authorization header is its
// provider key, which is forwarded and not ours to check.
func handleProxy(s *server) http.Handler {
	if s.Proxy == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "The proxy is off; start tokenledger with TOKENLEDGER_PROXY=1 to turn it on")
		})
	}
	keys := newKeyring(s.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(keys) > 0 {
			key := r.Header.Get(proxy.HeaderKey)
			if key == "" {
				writeError(w, http.StatusUnauthorized, "Recording through the proxy needs the API key in X-Tokenledger-Key; nothing was forwarded")
				return
			}
			if !keys.match(key) {
				s.logRefusal(r.Context(), slog.LevelWarn, "refused a proxied call with a wrong key", slog.String("remote", r.RemoteAddr))
				writeError(w, http.StatusForbidden, "The key in X-Tokenledger-Key is wrong; nothing was forwarded")
				return
			}
		}
		// The upstream's answer reaches the client with its own headers.
		w.Header().Del("Cache-Control")
		w.Header().Del("X-Content-Type-Options")
		if r.URL.Path != "/api/proxy" {
			s.Proxy.ServeHTTP(w, r)
			return
		}
		// Vercel's rewrite: the original path in tokenledger_path, the
		// original query beside it.
		q := r.URL.Query()
		name, rest, ok := strings.Cut(q.Get(rewrittenPath), "/")
		if !ok || name == "" {
			writeError(w, http.StatusNotFound, "The proxy's path is /proxy/{name}/…, with name an upstream")
			return
		}
		q.Del(rewrittenPath)
		s.Proxy.Forward(w, r, name, rest, q.Encode())
	})
}

// rewrittenPath is the query parameter vercel.json's rewrite puts the
// path after /proxy/ in.
const rewrittenPath = "tokenledger_path"

// handleCapture is POST /api/capture/{provider}: the body is a provider's
// response (or its stream's events), logged as one event with the user
// and session of the X-Tokenledger-User and -Session headers.
func handleCapture(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, err := capture.ParseKind(r.PathValue("provider"))
		if err != nil {
			writeError(w, http.StatusNotFound, "Capture reads openai, anthropic or gemini responses; "+err.Error())
			return
		}
		if msg := checkIdentityEncoding(r); msg != "" {
			w.Header().Set("Accept-Encoding", "identity")
			writeError(w, http.StatusUnsupportedMediaType, msg)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, "The body is larger than 1 MiB (1048576 bytes)")
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "The body could not be read completely")
			return
		}
		u, err := capture.Body(kind, body)
		if err != nil {
			s.Service.Refused(1)
			writeError(w, http.StatusBadRequest, "Nothing was stored: "+err.Error())
			return
		}
		e := u.Event(string(kind))
		e.UserID, e.SessionID = r.Header.Get(proxy.HeaderUser), r.Header.Get(proxy.HeaderSession)
		events := []tokenledger.Event{e}
		res, err := s.Service.Log(r.Context(), events)
		var ve *tokenledger.ValidationError
		switch {
		case errors.As(err, &ve):
			writeValidation(w, ve)
			return
		case err != nil:
			s.writeServiceError(w, r, "log a captured response", err)
			return
		}
		encode(w, http.StatusOK, logAnswer{
			Accepted: res.Accepted, Duplicates: res.Duplicates, IDs: res.IDs,
			StorageType: s.storageType, Degraded: res.Degraded, Costs: CostsOf(events),
		})
	})
}
