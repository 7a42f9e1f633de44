// Package handler is the Vercel Go function for the recording proxy:
// vercel.json rewrites /proxy/{name}/… here (docs/capture.md). It is the
// same API as /api/tokens, so it needs TOKENLEDGER_PROXY=1 like serve.
package handler

import (
	"net/http"
	"os"

	"github.com/tokenledger/tokenledger/serverless"
)

// Handler serves /proxy/{name}/….
func Handler(w http.ResponseWriter, r *http.Request) {
	serverless.Serve(w, r, os.Getenv)
}
