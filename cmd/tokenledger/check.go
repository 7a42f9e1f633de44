package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/httpapi"
)

const testUsage = `Usage: tokenledger test

Checks the configured store with a real write and read and prints the same
JSON as GET /api/test. Exits 1 when the check fails.
`

func runTest(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("test")
	verboseFlag(fs, &e)
	if err := parseFlags(fs, args, testUsage, e.stdout); err != nil {
		return err
	}
	cfg, err := loadConfig(e)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, e, cfg, app.Options{AllowDown: true})
	if err != nil {
		return err
	}
	rep := httpapi.BuildTestReport(ctx, a.Deps())
	cerr := a.Close()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("test: encode: %w", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	if !rep.OK() {
		return fmt.Errorf("storage check failed: %s", *rep.Database.Error)
	}
	if cerr != nil {
		return errors.Join(errors.New("storage check passed, but closing the store failed"), cerr)
	}
	return nil
}
