package httpapi

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/tokenledger/tokenledger"
)

// handlePrices serves GET /api/prices?model=M[&provider=P].
func handlePrices(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		model, provider, err := parsePriceQuery(r.URL.RawQuery)
		if err != nil {
			writeValidation(w, err)
			return
		}
		if s.Prices == nil {
			writeError(w, http.StatusNotFound, "This server has no price table; every event without costUsd is recorded as unpriced")
			return
		}
		desc, ok := s.Prices.Describe(model, provider)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("No price for model %q: it matches no key of the price table (%d models), so its events are recorded as unpriced; add it with TOKENLEDGER_PRICES",
				truncate(model, 200), s.Prices.Len()))
			return
		}
		encode(w, http.StatusOK, desc)
	})
}

// parsePriceQuery reads model (required) and provider (optional), each at
// most once; any other parameter is refused by name.
func parsePriceQuery(raw string) (model, provider string, _ *tokenledger.ValidationError) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", "", &tokenledger.ValidationError{Index: -1, Msg: malformedQuery(err)}
	}
	for name, v := range q {
		if name != "model" && name != "provider" {
			return "", "", &tokenledger.ValidationError{Index: -1, Field: name,
				Msg: "is not a parameter of /api/prices (it takes model and provider)"}
		}
		if len(v) > 1 {
			return "", "", &tokenledger.ValidationError{Index: -1, Field: name, Msg: "must be given at most once"}
		}
	}
	if q.Get("model") == "" {
		return "", "", &tokenledger.ValidationError{Index: -1, Field: "model", Msg: "is required, e.g. /api/prices?model=gpt-4o"}
	}
	return q.Get("model"), q.Get("provider"), nil
}
