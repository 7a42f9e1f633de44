// Command tokenledger records LLM token usage and reports it: it serves
// the HTTP API (serve), logs one event (log), prints a daily report
// (report) and checks the storage (test). Run `tokenledger --help`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

func main() {
	err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err as one line on stderr and returns the process exit
// code: 0 for nil, 2 for a usage error, 1 for anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "tokenledger: "+oneLine(withHint(err).Error()))
	if isUsage(err) {
		return 2
	}
	return 1
}
