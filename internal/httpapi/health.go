package httpapi

import (
	"context"
	"log/slog"
	"net/http"
)

// handleHealthz serves GET /healthz: the process is alive and serving.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz serves GET /readyz: 200 when the store check passes, 503
// otherwise (the reason goes to the log, not to the prober).
func handleReadyz(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.CheckTimeout)
		defer cancel()
		if _, err := s.Service.Check(ctx); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "not ready: the store check failed", slog.String("error", s.redact(err.Error())))
			writeError(w, http.StatusServiceUnavailable, "Storage is not reachable; the server is not ready")
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// handleMethodNotAllowed answers 405 on a known path with the methods it
// allows.
func handleMethodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "Method "+truncate(r.Method, 20)+" is not allowed on "+truncate(r.URL.Path, 60)+"; use "+allow)
	})
}

// handleNotFound answers 404 for every path the API does not have.
func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such endpoint: "+truncate(r.URL.Path, 80)+" (see docs/api.md)")
	})
}

// InternalErrorHandler answers every request with the contract's 500,
// "Internal error; the details are in the server log", and the headers
// of every answer. It stands in for a server that could not be built
// (serverless, when the configuration is broken); the caller logs why.
func InternalErrorHandler() http.Handler {
	return commonHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusInternalServerError, msgInternal)
	}))
}
