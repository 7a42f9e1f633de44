package httpapi

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/otlp"
)

// MaxOTLPBytes is the largest OTLP export accepted, before and after
// gzip: 4 MiB.
const MaxOTLPBytes = 4 << 20

// handleTraces is POST /v1/traces: OTLP/HTTP trace export, protobuf or
// JSON, gzip allowed. Each span with a provider call's usage becomes one
// event; spans that cannot be are counted in partialSuccess.
func handleTraces(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		var f otlp.Format
		switch mt {
		case "application/x-protobuf":
			f = otlp.Protobuf
		case "application/json":
			f = otlp.JSON
		default:
			writeError(w, http.StatusUnsupportedMediaType, "An OTLP export is application/x-protobuf or application/json")
			return
		}
		body, status, msg := readOTLP(w, r)
		if msg != "" {
			s.Service.Refused(1)
			writeError(w, status, msg)
			return
		}
		td, err := otlp.Decode(f, body)
		if err != nil {
			s.Service.Refused(1)
			writeError(w, http.StatusBadRequest, "Nothing was stored: "+err.Error())
			return
		}
		events, refused := otlp.Events(td)
		parts := make([]tokenledger.Batch, 0, len(events))
		for i := range events {
			b, err := s.Service.ValidateAndPrice(events[i : i+1])
			if err != nil {
				refused = append(refused, otlp.Refusal{Why: fmt.Sprintf("span %s: %v", events[i].ID, err)})
				continue
			}
			parts = append(parts, b)
		}
		if kept := tokenledger.JoinBatches(parts); kept.Len() > 0 {
			if _, err := s.Service.LogBatch(r.Context(), kept); err != nil {
				s.writeServiceError(w, r, "log spans", err)
				return
			}
		}
		s.Service.Refused(len(refused))
		why := ""
		if len(refused) > 0 {
			why = fmt.Sprintf("%d spans were not recorded; the first: %s", len(refused), refused[0].Why)
			if refused[0].Span != "" {
				why = fmt.Sprintf("%d spans were not recorded; the first, %q: %s", len(refused), refused[0].Span, refused[0].Why)
			}
		}
		b, err := otlp.Answer(f, int64(len(refused)), why)
		if err != nil {
			s.writeServiceError(w, r, "encode the OTLP answer", err)
			return
		}
		w.Header().Set("Content-Type", f.ContentType())
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	})
}

// readOTLP reads the body, gunzipping it when it says gzip, up to
// MaxOTLPBytes either way; msg says what is wrong, with its status.
func readOTLP(w http.ResponseWriter, r *http.Request) (body []byte, status int, msg string) {
	in := io.Reader(http.MaxBytesReader(w, r.Body, MaxOTLPBytes))
	enc, ok := contentCoding(r.Header.Values("Content-Encoding"))
	if !ok {
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("An OTLP export is sent with one Content-Encoding, gzip or identity, not %q", truncate(enc, 60))
	}
	switch enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, http.StatusBadRequest, "The body says gzip but is not gzip data"
		}
		in = io.LimitReader(zr, MaxOTLPBytes+1)
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("An OTLP export is sent as gzip or identity, not %q", enc)
	}
	body, err := io.ReadAll(in)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || len(body) > MaxOTLPBytes:
		return nil, http.StatusRequestEntityTooLarge, "The OTLP export is larger than 4 MiB; export fewer spans a request"
	case err != nil:
		return nil, http.StatusBadRequest, "The body could not be read completely (or its gzip data is cut short)"
	}
	return body, 0, ""
}

// contentCoding returns the one coding of a body's Content-Encoding
// values, identity left out ("" for none). ok is false for a stack of
// codings (gzip, gzip): a gzip of a gzip would let a 1 KiB body hold
// 1 GiB, so the body is decoded once at most; enc is then all of them.
func contentCoding(values []string) (enc string, ok bool) {
	var codings []string
	for _, v := range values {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	switch len(codings) {
	case 0:
		return "", true
	case 1:
		return codings[0], true
	}
	return strings.Join(codings, ", "), false
}
