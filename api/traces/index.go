// Package handler is the Vercel Go function for OTLP trace exports:
// vercel.json rewrites /v1/traces here, so that an exporter pointed at the
// deployment (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://…/v1/traces)
// records its GenAI spans like serve does.
package handler

import (
	"net/http"
	"os"

	"github.com/tokenledger/tokenledger/serverless"
)

// Handler serves POST /v1/traces (seen here as /api/traces).
func Handler(w http.ResponseWriter, r *http.Request) {
	serverless.Serve(w, r, os.Getenv)
}
