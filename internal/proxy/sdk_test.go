package proxy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/internal/testkit/nodetest"
	"github.com/tokenledger/tokenledger/internal/testkit/upstreamtest"
)

// sdkResult is one line a script of sdktest/ prints.
type sdkResult struct {
	Name      string `json:"name"`
	ID        string `json:"id"`
	Text      string `json:"text"`
	UsageSeen bool   `json:"usageSeen"`
}

// runSDK runs sdktest/script with node against the proxy at url. Without
// node or the installed clients it skips, unless TOKENLEDGER_REQUIRE_NODE
// is set (scripts/test.sh installs them; .ci/run requires them).
func runSDK(t *testing.T, script, url string) []sdkResult {
	t.Helper()
	node := nodetest.Node(t, "sdktest", "openai")
	cmd := exec.Command(node, script)
	cmd.Dir = "sdktest"
	cmd.Env = append(os.Environ(), "PROXY_URL="+url+"/proxy")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var res []sdkResult
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r sdkResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("node %s printed %q: %v", script, line, err)
		}
		res = append(res, r)
	}
	return res
}

// TestOfficialSDKs points each provider's official client at the proxy
// (its base URL changed, nothing else) with the stand-in upstream behind
// it: each client gets the upstream's text exactly, a stream that did
// not ask for usage sees none, and the ledger holds one event per call
// with the upstream's tokens, id, model, user and session.
func TestOfficialSDKs(t *testing.T) {
	for _, c := range []struct {
		script         string
		user, session  string
		calls          int
		usageWithheld  string // the call whose client must not see usage
		providerPrefix string
	}{
		{"openai.mjs", "u-openai", "s-openai", 5, "chat stream", "openai"},
		{"anthropic.mjs", "u-anthropic", "s-anthropic", 2, "", "anthropic"},
		{"gemini.mjs", "u-gemini", "", 2, "", "gemini"},
	} {
		t.Run(c.script, func(t *testing.T) {
			h := newHarness(t, "")
			results := runSDK(t, c.script, h.url)
			if len(results) != c.calls {
				t.Fatalf("%d results, want %d: %+v", len(results), c.calls, results)
			}
			events := h.recorded(t, c.calls)
			byID := map[string]int{}
			for i, e := range events {
				byID[e.ID] = i
			}
			sent := h.up.Sent()
			for _, r := range results {
				if r.Text != upstreamtest.Text {
					t.Errorf("%s: the client got %q, the upstream sent %q", r.Name, r.Text, upstreamtest.Text)
				}
				if r.UsageSeen == (r.Name == c.usageWithheld) {
					t.Errorf("%s: usage seen by the client = %v", r.Name, r.UsageSeen)
				}
				i, ok := byID[r.ID]
				if !ok {
					t.Errorf("%s: no event with the response id %q", r.Name, r.ID)
					continue
				}
				e, u := events[i], sent[r.ID].Usage
				if e.Model != u.Model || e.PromptTokens != u.Prompt || e.CompletionTokens != u.Completion || e.CacheReadTokens != u.CacheRead ||
					e.CacheWriteTokens != u.CacheWrite || e.ReasoningTokens != u.Reasoning {
					t.Errorf("%s: recorded %+v, upstream sent %+v", r.Name, e, u)
				}
				if e.UserID != c.user || e.SessionID != c.session || e.Provider != c.providerPrefix {
					t.Errorf("%s: user %q session %q provider %q", r.Name, e.UserID, e.SessionID, e.Provider)
				}
			}
			if auth := h.up.Last().Header; auth.Get("Authorization")+auth.Get("X-Api-Key")+auth.Get("X-Goog-Api-Key") == "" {
				t.Errorf("the client's provider key did not reach the upstream: %v", auth)
			}
		})
	}
}
