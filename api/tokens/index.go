// Package handler is the Vercel Go function for /api/tokens: POST logs
// usage, GET reports it, DELETE resets it (docs/api.md, docs/vercel.md).
package handler

import (
	"net/http"
	"os"

	"github.com/tokenledger/tokenledger/serverless"
)

// Handler serves /api/tokens.
func Handler(w http.ResponseWriter, r *http.Request) {
	serverless.Serve(w, r, os.Getenv)
}
