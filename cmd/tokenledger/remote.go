package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tokenledger/tokenledger/internal/loadgen"
)

// remoteTimeout bounds one request of report --url or test --url; the
// slowest answer (the store check) takes at most 5 s, a read at most
// TOKENLEDGER_DB_TIMEOUT.
const remoteTimeout = 30 * time.Second

// remote is a running tokenledger that report and test read over its
// HTTP API (--url) instead of opening the store, which a serve on the
// local file holds locked.
type remote struct {
	base   string // without a trailing slash
	key    string
	client *http.Client
}

// newRemote returns the tokenledger at raw. Reads send the read key
// TOKENLEDGER_READ_KEY, else TOKENLEDGER_API_KEY (which the server takes
// for reads too), when one is set: keys come from the environment, never
// from a flag, which anyone on the machine could see in the process list.
func newRemote(cmd, raw string, getenv func(string) string) (*remote, error) {
	u, err := loadgen.ServerURL(raw)
	if err != nil {
		return nil, usagef("%s: --url %s, not %q", cmd, err, raw)
	}
	key := strings.TrimSpace(getenv("TOKENLEDGER_READ_KEY"))
	if key == "" {
		key = strings.TrimSpace(getenv("TOKENLEDGER_API_KEY"))
	}
	return &remote{base: u.String(), key: key, client: &http.Client{
		Timeout:   remoteTimeout,
		Transport: &http.Transport{Proxy: nil}, // the server is named exactly; never a proxy from the environment
	}}, nil
}

// remoteError is an answer of the server other than 200: Status and the
// server's own sentence.
type remoteError struct {
	Status int
	Msg    string
}

func (e *remoteError) Error() string { return e.Msg }

// get GETs path (with its query) and decodes a 200 answer into v. Any
// other status is a *remoteError with the server's sentence; v is filled
// from the body all the same when it is JSON (GET /api/test answers its
// report with 503).
func (r *remote) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return err
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", r.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s%s: %w", r.base, path, err)
	}
	jerr := json.Unmarshal(body, v)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := fmt.Sprintf("%s answered HTTP %d", r.base, resp.StatusCode)
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg += ": " + e.Error
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			msg += " (reads use TOKENLEDGER_READ_KEY, else TOKENLEDGER_API_KEY, from the environment)"
		case http.StatusNotFound:
			msg += " (is --url the address of a tokenledger?)"
		}
		return &remoteError{Status: resp.StatusCode, Msg: msg}
	}
	if jerr != nil {
		return fmt.Errorf("%s%s did not answer the documented JSON (is --url the address of a tokenledger?): %v", r.base, path, jerr)
	}
	return nil
}
