package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/buildinfo"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/redact"
)

const mainUsage = `tokenledger records LLM token usage events and reports daily usage.

Usage:
  tokenledger <command> [flags]

Commands:
  serve    serve the HTTP API (docs/api.md)
  log      log one usage event (or a JSON body from stdin)
  capture  log the usage of a provider's response read from stdin
  report   print daily usage of the last days as a table or JSON
  test     check the storage with a real write and read (exit 1 when it fails)
  migrate  import a local usage file into the database, exactly once
  prices   show the price table events are priced with, or check a price file
  bench    load a server or the store and verify the totals (BENCHMARKS.md)

Run 'tokenledger <command> --help' for a command's flags, and
'tokenledger --version' for the version. Storage and
everything else is configured through the environment; see README.md.
`

// usageError is a mistake on the command line; the process exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// isUsage reports whether err is a command-line mistake.
func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

// errHelp is returned by parseFlags after printing a command's help; run
// turns it into success.
var errHelp = errors.New("help printed")

// env bundles what every command gets from run.
type env struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer // both remove secrets (redactor)
	// redactor removes every secret of the environment (tokens, keys, the
	// Redis password) and URL and bearer credentials.
	redactor *redact.Redactor
	// interactive is true when stderr is a terminal (bench's live
	// progress line).
	interactive bool
	// verbose is a one-shot command's --verbose (verboseFlag).
	verbose bool
}

// run is the whole program: main only calls it. args[0] is the program
// name, args[1] the command.
//
// No secret leaves run: stdout, stderr, every logger and the returned
// error go through a redactor built from the environment's secrets, even
// when the configuration does not load.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	red := redact.New(config.SecretsFromEnv(getenv)...)
	e := env{getenv: getenv, stdin: stdin, stdout: redact.Writer(stdout, red), stderr: redact.Writer(stderr, red), redactor: red,
		interactive: isTerminal(stderr, getenv)}
	return redactError(runCommand(ctx, args, e), red)
}

// runCommand runs the command args[1].
func runCommand(ctx context.Context, args []string, e env) error {
	stdout, stderr := e.stdout, e.stderr
	if len(args) < 2 {
		fmt.Fprint(stderr, mainUsage)
		return usagef("no command given; use serve, log, capture, report, test, migrate, prices or bench")
	}
	cmd, rest := args[1], args[2:]
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, rest, e)
	case "log":
		err = runLog(ctx, rest, e)
	case "capture":
		err = runCapture(ctx, rest, e)
	case "report":
		err = runReport(ctx, rest, e)
	case "test":
		err = runTest(ctx, rest, e)
	case "migrate":
		err = runMigrate(ctx, rest, e)
	case "bench":
		err = runBench(ctx, rest, e)
	case "prices":
		err = runPrices(ctx, rest, e)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, mainUsage)
		return nil
	case "version", "-version", "--version":
		if len(rest) > 0 {
			return usagef("version takes no arguments, not %q", rest[0])
		}
		fmt.Fprintf(stdout, "tokenledger %s (%s %s/%s)\n", buildinfo.Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	default:
		return usagef("unknown command %q; use serve, log, capture, report, test, migrate, prices or bench (see tokenledger --help)", cmd)
	}
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// newFlagSet returns a flag set that reports errors to parseFlags instead
// of printing them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs. For -h/--help it prints the command's
// help (head, then the flags) on stdout and returns errHelp; for a bad
// flag, a stray argument or a string flag given with an empty value it
// returns a one-line *usageError. An empty value is never taken for the
// flag's default (a new id, now, no address of one's own): only the
// flags named in emptyOK, for which empty means none, may be empty.
func parseFlags(fs *flag.FlagSet, args []string, head string, stdout io.Writer, emptyOK ...string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		var b bytes.Buffer
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprintf(stdout, "%s\nFlags:\n%s", head, helpFlagNames.ReplaceAllStringFunc(b.String(), func(m string) string {
			return "  " + dashed(strings.TrimPrefix(m, "  -"))
		}))
		return errHelp
	}
	if err != nil {
		msg := errorFlagNames.ReplaceAllStringFunc(oneLine(err.Error()), func(m string) string {
			i := strings.LastIndex(m, "-")
			return m[:i] + dashed(m[i+1:])
		})
		return usagef("%s: %s (see tokenledger %s --help)", fs.Name(), msg, fs.Name())
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q (see tokenledger %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	var empty string
	fs.Visit(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok && empty == "" && !slices.Contains(emptyOK, f.Name) {
			if v, ok := g.Get().(string); ok && v == "" {
				empty = f.Name
			}
		}
	})
	if empty != "" {
		return usagef("%s: --%s must not be empty (see tokenledger %s --help)", fs.Name(), empty, fs.Name())
	}
	return nil
}

// The flag package writes every flag with one dash; tokenledger's help,
// errors and docs write a name of more than one letter with two (--addr)
// and a one-letter name with one (-c). Both forms are accepted either way.
var (
	// helpFlagNames matches a flag's name at the start of a line of
	// PrintDefaults.
	helpFlagNames = regexp.MustCompile(`(?m)^  -[^\s-][^\s=]*`)
	// errorFlagNames matches a flag's name in the flag package's errors
	// ("flag provided but not defined: -x", "invalid value … for flag -x:",
	// "invalid boolean value … for -x:", "flag needs an argument: -x").
	errorFlagNames = regexp.MustCompile(`(defined: |for flag |for |argument: )-[^\s:=]+`)
)

// dashed writes the flag name as the help and docs do: --name, or -n for
// a one-letter name.
func dashed(name string) string {
	if len([]rune(name)) == 1 {
		return "-" + name
	}
	return "--" + name
}

// verboseFlag defines --verbose for a one-shot command (log, capture,
// report, test, migrate): without it, it logs only warnings and errors,
// so that its result is not buried in the store's info lines.
func verboseFlag(fs *flag.FlagSet, e *env) {
	fs.BoolVar(&e.verbose, "verbose", false, "also log the info lines (which store is used, each event logged) on stderr, at TOKENLEDGER_LOG_LEVEL")
}

// loadConfig reads the environment.
func loadConfig(e env) (config.Config, error) {
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return config.Config{}, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// newLogger returns the text logger on stderr every command uses. It
// removes secrets from every message and attribute (redact.Handler).
func newLogger(w io.Writer, level slog.Level, red *redact.Redactor) *slog.Logger {
	return slog.New(redact.NewHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}), red))
}

// redactedError is an error whose message had secrets removed; it still
// unwraps to the original, so errors.Is and errors.As (isUsage) work.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError returns err with secrets removed from its message.
func redactError(err error, red *redact.Redactor) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := red.String(msg); clean != msg {
		return &redactedError{err: err, msg: clean}
	}
	return err
}

// openApp opens the store cfg selects for a one-shot command, logging on
// stderr: warnings and errors only, unless --verbose (see verboseFlag).
// The caller must Close the App.
func openApp(ctx context.Context, e env, cfg config.Config, o app.Options) (*app.App, error) {
	if o.Logger == nil {
		level := cfg.LogLevel
		if !e.verbose {
			level = max(level, slog.LevelWarn)
		}
		o.Logger = newLogger(e.stderr, level, e.redactor)
	}
	return app.Open(ctx, cfg, o)
}

// oneLine joins the lines of s, so that every error is one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
