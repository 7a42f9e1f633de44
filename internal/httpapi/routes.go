package httpapi

import (
	"net/http"
	"path"

	"github.com/tokenledger/tokenledger/internal/web"
)

// addRoutes lists the whole HTTP surface of tokenledger. A GET route also
// answers HEAD. Every other method on a known path gets 405 with Allow;
// every unknown path gets 404. All answers but the dashboard's files are
// JSON. NewServer puts
// onlyCleanPaths in front, so that the mux never redirects.
//
// /api/tokens is guarded by keys (auth.go): POST by the API key, GET by
// the read key (or the API key), DELETE by the admin key. GET /api/prices
// takes the read key too: a user's price file may hold contract prices, and
// so does GET /metrics (per-model tokens and cost).
// POST /api/capture/{provider} and POST /v1/traces (OTLP) take the API
// key like POST /api/tokens;
// /proxy/{name}/… (any method, forwarded) takes it in X-Tokenledger-Key
// (capture.go). /api/test,
// /healthz and /readyz are open and show no secret.
func addRoutes(mux *http.ServeMux, s *server) {
	mux.Handle("POST /api/tokens", s.requireKey(accessWrite, handleLog(s)))
	mux.Handle("GET /api/tokens", s.requireKey(accessRead, handleQuery(s)))
	mux.Handle("DELETE /api/tokens", s.requireKey(accessAdmin, handleReset(s)))
	mux.Handle("/api/tokens", handleMethodNotAllowed("GET, HEAD, POST, DELETE"))

	mux.Handle("GET /api/prices", s.requireKey(accessRead, handlePrices(s)))
	mux.Handle("/api/prices", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("GET /api/test", handleTest(s))
	mux.Handle("/api/test", handleMethodNotAllowed("GET, HEAD"))

	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.requireKey(accessRead, s.Metrics.Handler()))
		mux.Handle("/metrics", handleMethodNotAllowed("GET, HEAD"))
	}

	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("/healthz", handleMethodNotAllowed("GET, HEAD"))
	mux.Handle("GET /readyz", handleReadyz(s))
	mux.Handle("/readyz", handleMethodNotAllowed("GET, HEAD"))

	mux.Handle("POST /api/capture/{provider}", s.requireKey(accessWrite, handleCapture(s)))
	mux.Handle("/api/capture/{provider}", handleMethodNotAllowed("POST"))
	mux.Handle("POST /v1/traces", s.requireKey(accessWrite, handleTraces(s)))
	mux.Handle("/v1/traces", handleMethodNotAllowed("POST"))
	mux.Handle("POST /api/traces", s.requireKey(accessWrite, handleTraces(s))) // vercel.json's rewrite of /v1/traces
	mux.Handle("/api/traces", handleMethodNotAllowed("POST"))
	mux.Handle("/proxy/{name}/{rest...}", handleProxy(s))
	mux.Handle("/api/proxy", handleProxy(s)) // vercel.json's rewrite of /proxy/…

	addDashboardRoutes(mux)

	mux.Handle("/", handleNotFound())
}

// addDashboardRoutes adds the dashboard (internal/web): the page at / and
// /dashboard, its files under /dashboard/. The page holds no data: it
// reads the API with the key the user gives it, so it is open like
// /api/test.
func addDashboardRoutes(mux *http.ServeMux) {
	mux.Handle("GET /{$}", web.Page())
	mux.Handle("/{$}", handleMethodNotAllowed("GET, HEAD"))
	mux.Handle("GET /dashboard", web.Page())
	mux.Handle("/dashboard", handleMethodNotAllowed("GET, HEAD"))
	mux.Handle("GET /dashboard/{asset}", web.Assets(handleNotFound()))
	mux.Handle("/dashboard/{asset}", handleMethodNotAllowed("GET, HEAD"))
}

// DashboardHandler serves the dashboard alone, for the Vercel function
// api/dashboard that vercel.json's rewrites send /, /dashboard and
// /dashboard/{asset} to. Whether the function sees the original path or
// its own, it answers the same: /api/dashboard is the page, and
// /api/dashboard?asset=NAME the file NAME. It needs no store.
func DashboardHandler() http.Handler {
	mux := http.NewServeMux()
	addDashboardRoutes(mux)
	notFound := handleNotFound()
	page := web.Page()
	mux.Handle("GET /api/dashboard", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.Query().Has("asset") {
			page.ServeHTTP(w, r)
		} else if !web.ServeAsset(w, r, r.URL.Query().Get("asset")) {
			notFound.ServeHTTP(w, r)
		}
	}))
	mux.Handle("/api/dashboard", handleMethodNotAllowed("GET, HEAD"))
	mux.Handle("/", notFound)
	return commonHeaders(onlyCleanPaths(mux))
}

// onlyCleanPaths answers 404, like any unknown path, for a path that is
// not in clean form ("//api/tokens", "/api/./tokens", "/x/../api/tokens").
// http.ServeMux would redirect it to the clean path with a text/html
// answer, which is not JSON and which a client that POSTs may follow
// without its body; the API has no such path, so it says so.
func onlyCleanPaths(mux http.Handler) http.Handler {
	notFound := handleNotFound()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "" && cleanPath(p) != p {
			notFound.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// cleanPath is p as http.ServeMux cleans it before matching: rooted, with
// "//", "." and ".." resolved, and a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
