// Package handler is the Vercel Go function for the dashboard: vercel.json
// rewrites /, /dashboard and /dashboard/{asset} here (docs/vercel.md).
package handler

import (
	"net/http"

	"github.com/tokenledger/tokenledger/serverless"
)

// Handler serves the dashboard's page and files.
func Handler(w http.ResponseWriter, r *http.Request) {
	serverless.ServeDashboard(w, r)
}
