// Package handler is the Vercel Go function for /api/test: a real write
// and read against the store, the fallback spool and the migration
// (docs/api.md, docs/vercel.md).
package handler

import (
	"net/http"
	"os"

	"github.com/tokenledger/tokenledger/serverless"
)

// Handler serves /api/test.
func Handler(w http.ResponseWriter, r *http.Request) {
	serverless.Serve(w, r, os.Getenv)
}
