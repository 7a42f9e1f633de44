package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPricesCommand(t *testing.T) {
	dir := t.TempDir()
	env := fileEnv(filepath.Join(dir, "usage.json"))

	r := cli(t, env, "", "prices")
	if r.code != 0 || !strings.Contains(r.stdout, "218 models; US dollars per million tokens") ||
		!regexpLine(r.stdout, `claude-sonnet-4-5 +3 +0.3 +3.75 +15 +15 +>200k +built-in`) {
		t.Fatalf("prices: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, env, "", "prices", "--model", "gpt-5.6-2026-10-01")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "gpt-5.6-2026-10-01 → gpt-5.6 (without date, built-in)\n") ||
		!strings.Contains(r.stdout, "above 272000 prompt tokens") || !strings.Contains(r.stdout, "input       $10  from input_cost_per_token_above_272k_tokens") {
		t.Fatalf("prices --model: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, env, "", "prices", "--model", "gpt-4o", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"key": "gpt-4o"`) || !strings.Contains(r.stdout, `"usdPerToken": 0.0000025`) {
		t.Fatalf("prices --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, env, "", "prices", "--model", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, `no price for model "nope"`) {
		t.Fatalf("prices unknown: exit %d\n%s", r.code, r.stderr)
	}

	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte(`{"my-llama": {"input_cost_per_token": 1e-07, "output_cost_per_token": 2e-07}}`), 0o644)
	os.WriteFile(bad, []byte(`{"my-llama": {"input_cost_per_token": -1e-07}}`), 0o644)
	r = cli(t, env, "", "prices", "--check", good)
	if r.code != 0 || r.stdout != good+": a valid price file of 1 models\n" {
		t.Fatalf("--check good: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	wantBad := `price file: model "my-llama": field input_cost_per_token must not be negative (it is -1e-07) (` + bad + ")"
	r = cli(t, env, "", "prices", "--check", bad)
	if r.code != 1 || !strings.Contains(r.stderr, wantBad) {
		t.Fatalf("--check bad: exit %d %s", r.code, r.stderr)
	}

	// TOKENLEDGER_PRICES adds to the built-in table; a malformed one stops
	// every command at start, before anything is written.
	env["TOKENLEDGER_PRICES"] = good
	r = cli(t, env, "", "log", "--model", "my-llama", "--prompt", "1000", "--completion", "10")
	if r.code != 0 || !strings.Contains(r.stdout, "cost $0.000102 (price table: my-llama)") {
		t.Fatalf("log with a user price: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	env["TOKENLEDGER_PRICES"] = bad
	for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"log", "--model", "m", "--prompt", "1"}, {"prices"}} {
		r = cli(t, env, "", args...)
		if r.code != 1 || !strings.Contains(r.stderr, wantBad) {
			t.Errorf("%v with a malformed TOKENLEDGER_PRICES: exit %d %s", args, r.code, r.stderr)
		}
	}
	env["TOKENLEDGER_PRICES"] = filepath.Join(dir, "missing.json")
	if r = cli(t, env, "", "prices"); r.code != 1 || !strings.Contains(r.stderr, "missing.json cannot be read: no such file or directory") {
		t.Errorf("missing TOKENLEDGER_PRICES: exit %d %s", r.code, r.stderr)
	}
}

// regexpLine reports whether a whole line of s matches pattern.
func regexpLine(s, pattern string) bool {
	return regexp.MustCompile("(?m)^" + pattern + "$").MatchString(s)
}
