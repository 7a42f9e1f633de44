package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCapture logs a streamed Anthropic response read from stdin, counts
// the same response id once, and refuses a body without usage and an
// unknown provider with one line, logging nothing.
func TestCapture(t *testing.T) {
	file := filepath.Join(t.TempDir(), "usage.json")
	env := map[string]string{"TOKENLEDGER_FILE": file}
	stream, err := os.ReadFile("../../capture/testdata/anthropic-stream.sse")
	if err != nil {
		t.Fatal(err)
	}
	r := cli(t, env, string(stream), "capture", "--provider", "anthropic", "--user", "u1", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"accepted":1`) || !strings.Contains(r.stdout, `"ids":["msg_stream3"]`) {
		t.Fatalf("capture: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := cli(t, env, string(stream), "capture", "--provider", "anthropic"); r.code != 0 || !strings.Contains(r.stdout, "duplicate: id msg_stream3") {
		t.Errorf("the same response again: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for _, c := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"capture", "--provider", "gemini"}, `{"error":{"code":429}}`, "nothing was logged: the Gemini response has no usageMetadata"},
		{[]string{"capture", "--provider", "mistral"}, `{}`, `"mistral" is not a provider capture reads`},
		{[]string{"capture"}, `{}`, "--provider is required"},
	} {
		if r := cli(t, env, c.stdin, c.args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %d %q; want exit 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	r = cli(t, env, "", "report", "--json", "--days", "1")
	if r.code != 0 || !strings.Contains(r.stdout, `"requestCount": 1,`) || !strings.Contains(r.stdout, `"totalTokens": 6040,`) {
		t.Errorf("report after the captures: %d %s %s", r.code, r.stdout, r.stderr)
	}
}
