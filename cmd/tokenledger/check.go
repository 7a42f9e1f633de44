package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/httpapi"
)

const testUsage = `Usage: tokenledger test [--url URL]

Checks the configured store with a real write and read and prints the same
JSON as GET /api/test. Exits 1 when the check fails.

With --url it asks a running tokenledger instead (GET /api/test), which is
the way to check a serve that holds the local file: the file allows one
process at a time.
`

func runTest(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("test")
	verboseFlag(fs, &e)
	url := fs.String("url", "", "check the tokenledger serving at this `URL`, such as http://127.0.0.1:8080, instead of opening the store")
	if err := parseFlags(fs, args, testUsage, e.stdout); err != nil {
		return err
	}
	var rep httpapi.TestReport
	var cerr error
	if *url != "" {
		r, err := newRemote("test", *url, e.getenv)
		if err != nil {
			return err
		}
		// A failed check answers 503 with the report: print it, then fail.
		var re *remoteError
		if err := r.get(ctx, "/api/test", &rep); err != nil && (!errors.As(err, &re) || re.Status != http.StatusServiceUnavailable || rep.Status == "") {
			return fmt.Errorf("test: %w", err)
		}
	} else {
		cfg, err := loadConfig(e)
		if err != nil {
			return err
		}
		a, err := openApp(ctx, e, cfg, app.Options{AllowDown: true})
		if err != nil {
			return err
		}
		rep = httpapi.BuildTestReport(ctx, a.Deps())
		cerr = a.Close()
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("test: encode: %w", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	if !rep.OK() {
		why := "no reason given"
		if rep.Database.Error != nil {
			why = *rep.Database.Error
		}
		return fmt.Errorf("storage check failed: %s", why)
	}
	if cerr != nil {
		return errors.Join(errors.New("storage check passed, but closing the store failed"), cerr)
	}
	return nil
}
