package httpapi

import "net/http"

// addRoutes lists the whole HTTP surface of tokenledger. A GET route also
// answers HEAD. Every other method on a known path gets 405 with Allow;
// every unknown path gets 404. All answers are JSON.
//
// /api/tokens is guarded by keys (auth.go): POST by the API key, GET by
// the read key (or the API key), DELETE by the admin key. /api/test,
// /healthz and /readyz are open and show no secret.
func addRoutes(mux *http.ServeMux, s *server) {
	mux.Handle("POST /api/tokens", s.requireKey(accessWrite, handleLog(s)))
	mux.Handle("GET /api/tokens", s.requireKey(accessRead, handleQuery(s)))
	mux.Handle("DELETE /api/tokens", s.requireKey(accessAdmin, handleReset(s)))
	mux.Handle("/api/tokens", handleMethodNotAllowed("GET, HEAD, POST, DELETE"))

	mux.Handle("GET /api/test", handleTest(s))
	mux.Handle("/api/test", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("/healthz", handleMethodNotAllowed("GET, HEAD"))
	mux.Handle("GET /readyz", handleReadyz(s))
	mux.Handle("/readyz", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("/", handleNotFound())
}
