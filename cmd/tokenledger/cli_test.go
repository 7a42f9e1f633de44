package main

import (
	"encoding/json"
	"strings"
	"testing"
)

var memoryEnv = map[string]string{"TOKENLEDGER_STORE": "memory"}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"serve", "--help"}, {"log", "-h"}, {"report", "--help"}, {"test", "-help"},
		{"migrate", "--help"}, {"bench", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			// A broken environment must not stop --help.
			r := cli(t, map[string]string{"TOKENLEDGER_STORE": "bogus"}, "", args...)
			if r.code != 0 || r.err != nil {
				t.Fatalf("exit %d, err %v, stderr %s", r.code, r.err, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "Usage:") && !strings.HasPrefix(r.stdout, "tokenledger records") {
				t.Errorf("stdout does not start with usage:\n%s", r.stdout)
			}
			if r.stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.stderr)
			}
			// Help passes through the same redaction as every output; no
			// sentence of it may read like a credential.
			if strings.Contains(r.stdout, "[redacted]") {
				t.Errorf("help text was mangled by redaction:\n%s", r.stdout)
			}
			if len(args) == 2 && !strings.Contains(r.stdout, "Flags:") {
				t.Errorf("command help lists no flags:\n%s", r.stdout)
			}
		})
	}
}

// TestFlagsAreWrittenAsInTheDocs: --help writes a flag of more than one
// letter as --name and a one-letter flag as -n, as README.md does, and
// every one-shot command has --verbose.
func TestFlagsAreWrittenAsInTheDocs(t *testing.T) {
	for cmd, want := range map[string][]string{
		"serve":   {"\n  --addr host:port\n", "\n  --repair\n"},
		"bench":   {"\n  --url string\n", "\n  -c clients\n", "\n  -n events\n", "\n  --batch events\n"},
		"report":  {"\n  --days days\n", "\n  --verbose\n"},
		"log":     {"\n  --model name\n", "\n  --verbose\n"},
		"capture": {"\n  --verbose\n"},
		"test":    {"\n  --verbose\n"},
		"migrate": {"\n  --file string\n", "\n  --verbose\n"},
	} {
		r := cli(t, memoryEnv, "", cmd, "--help")
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s --help lacks %q:\n%s", cmd, w, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "\n  -"+strings.TrimPrefix(strings.TrimSpace(want[0]), "--")) {
			t.Errorf("%s --help writes a flag with one dash:\n%s", cmd, r.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // the one line on stderr
	}{
		{[]string{"serve", "--bogus"}, "tokenledger: serve: flag provided but not defined: --bogus (see tokenledger serve --help)"},
		{[]string{"serve", "extra"}, `tokenledger: serve: unexpected argument "extra" (see tokenledger serve --help)`},
		{[]string{"serve", "--addr", "8080"}, `tokenledger: serve: --addr must be host:port or :port (such as 127.0.0.1:8080), not "8080"`},
		{[]string{"log", "--prompt", "abc", "--model", "m"}, `tokenledger: log: invalid value "abc" for flag --prompt: must be a whole number written with the digits 0-9 only, such as 1500 (see tokenledger log --help)`},
		// Go's integer flags would read these as 8, 16 and 1000.
		{[]string{"log", "--model", "m", "--prompt", "010"}, `tokenledger: log: invalid value "010" for flag --prompt: must be written without leading zeros (see tokenledger log --help)`},
		{[]string{"log", "--model", "m", "--completion", "0x10"}, `tokenledger: log: invalid value "0x10" for flag --completion: must be a whole number written with the digits 0-9 only, such as 1500 (see tokenledger log --help)`},
		{[]string{"log", "--model", "m", "--prompt", "1_000"}, `tokenledger: log: invalid value "1_000" for flag --prompt: must be a whole number written with the digits 0-9 only`},
		{[]string{"log", "--model", "m", "--prompt", "99999999999999999999"}, `tokenledger: log: invalid value "99999999999999999999" for flag --prompt: is too large`},
		// -1 was the "not given" marker of --total: given, it is refused.
		{[]string{"log", "--model", "m", "--prompt", "10", "--completion", "5", "--total", "-1"}, "tokenledger: log: --total must be an integer from 0 to 1099511627776"},
		{[]string{"report", "--days", "010"}, `tokenledger: report: invalid value "010" for flag --days: must be written without leading zeros`},
		{[]string{"bench", "-c", "0x10"}, `tokenledger: bench: invalid value "0x10" for flag -c: must be a whole number written with the digits 0-9 only`},
		{[]string{"log"}, "tokenledger: log: --model is required (see tokenledger log --help)"},
		{[]string{"log", "--model", "m", "--prompt", "-5"}, "tokenledger: log: --prompt must be an integer from 0 to 1099511627776"},
		{[]string{"log", "--model", "m", "--prompt", "5", "--cache-read", "10"}, "tokenledger: log: --cache-read plus --cache-write must not exceed --prompt (5)"},
		{[]string{"log", "--model", "m", "--total", "1", "--prompt", "5"}, "tokenledger: log: --total must not be smaller than --prompt + --completion (5)"},
		{[]string{"log", "--model", "m", "--cost", "abc"}, `tokenledger: log: --cost must be a non-negative decimal number of US dollars, not "abc"`},
		{[]string{"log", "--model", "m", "--cost", "-1"}, `tokenledger: log: --cost must not be negative, not "-1"`},
		{[]string{"log", "--model", "m", "--timestamp", "yesterday"}, `tokenledger: log: --timestamp must be an RFC 3339 time such as 2026-11-27T12:00:00Z, not "yesterday"`},
		{[]string{"log", "--model", "m", "--timestamp", "2000-01-01T00:00:00Z"}, "tokenledger: log: --timestamp is older than the retention window (90 days, oldest day kept is " /* date varies */},
		// The zero time is a time like any other, not "now"; and RFC 3339
		// is held strictly, as in the API.
		{[]string{"log", "--model", "m", "--timestamp", "0001-01-01T00:00:00Z"}, "tokenledger: log: --timestamp is older than the retention window (90 days, oldest day kept is "},
		{[]string{"log", "--model", "m", "--timestamp", "2026-11-27T12:00:00+24:00"}, `tokenledger: log: --timestamp must be an RFC 3339 time such as 2026-11-27T12:00:00Z, not "2026-11-27T12:00:00+24:00"`},
		{[]string{"log", "--model", "m", "--timestamp", "2026-11-27T12:00:00,5Z"}, `tokenledger: log: --timestamp must be an RFC 3339 time such as 2026-11-27T12:00:00Z, not "2026-11-27T12:00:00,5Z"`},
		{[]string{"log", "--model", "m", "--id", "has space"}, "tokenledger: log: --id must contain only printable ASCII characters without spaces"},
		{[]string{"log", "--stdin", "--model", "m"}, "tokenledger: log: --stdin cannot be combined with --model"},
		// A flag given with an empty value is a mistake, not the default:
		// over HTTP "id": "" and "timestamp": "" are 400 too.
		{[]string{"log", "--model", "m", "--id", ""}, "tokenledger: log: --id must not be empty (see tokenledger log --help)"},
		{[]string{"log", "--model", "m", "--timestamp", ""}, "tokenledger: log: --timestamp must not be empty (see tokenledger log --help)"},
		{[]string{"log", "--model", "m", "--cost="}, "tokenledger: log: --cost must not be empty (see tokenledger log --help)"},
		{[]string{"log", "--model", ""}, "tokenledger: log: --model must not be empty (see tokenledger log --help)"},
		{[]string{"serve", "--addr", ""}, "tokenledger: serve: --addr must not be empty (see tokenledger serve --help)"},
		{[]string{"serve", "--pprof", ""}, "tokenledger: serve: --pprof must not be empty (see tokenledger serve --help)"},
		{[]string{"migrate", "--file", ""}, "tokenledger: migrate: --file must not be empty (see tokenledger migrate --help)"},
		{[]string{"bench", "--url", ""}, "tokenledger: bench: --url must not be empty (see tokenledger bench --help)"},
		{[]string{"bench", "--store", "--api-key", ""}, "tokenledger: bench: --api-key must not be empty (see tokenledger bench --help)"},
		{[]string{"report", "--days", "x"}, `tokenledger: report: invalid value "x" for flag --days: must be a whole number written with the digits 0-9 only, such as 1500 (see tokenledger report --help)`},
		{[]string{"report", "--days", "0"}, "tokenledger: report: --days must be a whole number from 1 to 91, not 0"},
		{[]string{"report", "--days", "92"}, "tokenledger: report: --days must be a whole number from 1 to 91, not 92"},
		{[]string{"test", "--json"}, "tokenledger: test: flag provided but not defined: --json (see tokenledger test --help)"},
		{[]string{"frobnicate"}, `tokenledger: unknown command "frobnicate"; use serve, log, capture, report, test, migrate, prices or bench (see tokenledger --help)`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := cli(t, memoryEnv, "", tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d (err %v), want 2", r.code, r.err)
			}
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line:\n%s", r.stderr)
			}
			if !strings.HasPrefix(r.stderr, tc.want) {
				t.Errorf("stderr =\n%q\nwant\n%q", r.stderr, tc.want)
			}
		})
	}
	t.Run("no command", func(t *testing.T) {
		r := cli(t, memoryEnv, "")
		if r.code != 2 || !strings.HasSuffix(r.stderr, "tokenledger: no command given; use serve, log, capture, report, test, migrate, prices or bench\n") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestEmptyFlagsThatMeanNone: an empty --provider, --user or --session
// means none, as an empty provider, userId or sessionId does over HTTP.
func TestEmptyFlagsThatMeanNone(t *testing.T) {
	r := cli(t, memoryEnv, "", "log", "--model", "m", "--prompt", "3", "--provider", "", "--user", "", "--session", "")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "logged 3 tokens for model m") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"TOKENLEDGER_STORE": "postgres"}, []string{"report"},
			`tokenledger: configuration: TOKENLEDGER_STORE must be auto, file, redis, kv-rest (or kv) or memory, not "postgres"` + "\n"},
		{map[string]string{"TOKENLEDGER_RETENTION_DAYS": "ninety"}, []string{"serve"},
			`tokenledger: configuration: TOKENLEDGER_RETENTION_DAYS must be a whole number of days from 1 to 3650, not "ninety"` + "\n"},
		{map[string]string{"TOKENLEDGER_STORE": "memory"}, []string{"serve", "--repair"},
			"tokenledger: --repair applies to the local file store only, and the store is memory (TOKENLEDGER_STORE=memory)\n"},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:1"}, []string{"report"},
			"tokenledger: redis 127.0.0.1:1: load script: storage unavailable: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:1"}, []string{"test"},
			"tokenledger: storage check failed: redis 127.0.0.1:1: check: storage unavailable: dial tcp 127.0.0.1:1: connect: connection refused\n"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			r := cli(t, tc.env, "", tc.args...)
			if r.code != 1 {
				t.Fatalf("exit %d (err %v), want 1", r.code, r.err)
			}
			if !strings.HasSuffix(r.stderr, tc.want) {
				t.Errorf("stderr =\n%q\nwant it to end with\n%q", r.stderr, tc.want)
			}
		})
	}
}

func TestTestCommand(t *testing.T) {
	r := cli(t, memoryEnv, "", "test")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"status", "storageType", "database", "fallback", "migration", "environment", "timestamp"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("report lacks %q: %s", k, r.stdout)
		}
	}
	if rep["status"] != "ok" {
		t.Errorf("status = %v", rep["status"])
	}
	// Quiet by default: the result is the JSON; --verbose shows the
	// store's info lines.
	if strings.Contains(r.stderr, "level=INFO") {
		t.Errorf("test without --verbose logged info lines: %q", r.stderr)
	}
	r = cli(t, memoryEnv, "", "test", "--verbose")
	if r.code != 0 || !strings.Contains(r.stderr, "💾 Using the memory store at process memory (TOKENLEDGER_STORE=memory)") {
		t.Errorf("no startup line on stderr with --verbose:\n%s", r.stderr)
	}
}

func TestServeMemory(t *testing.T) {
	s := startServer(t, memoryEnv)
	status, body := call(t, "POST", s.url+"/api/tokens", `{"model":"gpt-4o","promptTokens":3,"completionTokens":4}`)
	if status != 200 || body["accepted"] != 1.0 {
		t.Fatalf("POST: %d %v", status, body)
	}
	status, body = call(t, "GET", s.url+"/api/tokens", "")
	if status != 200 || body["todayUsage"].(map[string]any)["totalTokens"] != 7.0 {
		t.Fatalf("GET: %d %v", status, body)
	}
	s.stop(t)
	if !strings.Contains(s.stderr.String(), "📊 Logged 7 tokens for model gpt-4o (File)") {
		t.Errorf("log lacks the Logged line:\n%s", s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "tokenledger stopped") {
		t.Errorf("log lacks the stop line:\n%s", s.stderr)
	}
}

// TestShortKeyIsRefusedReadably: a key too short to be one is refused in
// a sentence that reads as written, even when the key is a word of it.
func TestShortKeyIsRefusedReadably(t *testing.T) {
	r := cli(t, map[string]string{"TOKENLEDGER_STORE": "memory", "TOKENLEDGER_API_KEY": "short"}, "", "test")
	want := "tokenledger: configuration: TOKENLEDGER_API_KEY must be at least 16 characters long (a short key can be guessed)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d, stderr %q\nwant %q", r.code, r.stderr, want)
	}
}
