package httpapi

import "net/http"

// addRoutes lists the whole HTTP surface of tokenledger. A GET route also
// answers HEAD. Every other method on a known path gets 405 with Allow;
// every unknown path gets 404. All answers are JSON.
func addRoutes(mux *http.ServeMux, s *server) {
	mux.Handle("POST /api/tokens", handleLog(s))
	mux.Handle("GET /api/tokens", handleQuery(s))
	mux.Handle("DELETE /api/tokens", handleReset(s))
	mux.Handle("/api/tokens", handleMethodNotAllowed("GET, HEAD, POST, DELETE"))

	mux.Handle("GET /api/test", handleTest(s))
	mux.Handle("/api/test", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("/healthz", handleMethodNotAllowed("GET, HEAD"))
	mux.Handle("GET /readyz", handleReadyz(s))
	mux.Handle("/readyz", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("/", handleNotFound())
}
