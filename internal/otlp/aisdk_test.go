package otlp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/nodetest"
)

// aiCall is one provider call the AI SDK script made, with the usage its
// mock model reported.
type aiCall struct {
	Name, Model, ID                     string
	Input, CacheRead, Output, Reasoning int64
}

// runAISDK runs aisdktest/calls.mjs with node, exporting to url over
// protocol (proto or json). Without node or the installed packages it
// skips, unless TOKENLEDGER_REQUIRE_NODE is set (scripts/test.sh installs
// them; .ci/run requires them).
func runAISDK(t *testing.T, url, protocol string) []aiCall {
	t.Helper()
	node := nodetest.Node(t, "aisdktest", "ai")
	cmd := exec.Command(node, "calls.mjs")
	cmd.Dir = "aisdktest"
	cmd.Env = append(os.Environ(), "OTLP_URL="+url, "OTLP_KEY=otlp-api-key-0123456789", "OTLP_PROTOCOL="+protocol)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node calls.mjs: %v\n%s", err, stderr.String())
	}
	var calls []aiCall
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var c aiCall
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("calls.mjs printed %q: %v", line, err)
		}
		calls = append(calls, c)
	}
	if stderr.Len() > 0 {
		t.Logf("calls.mjs stderr: %s", stderr.String())
	}
	return calls
}

// TestVercelAISDK runs the real AI SDK (generateText, streamText and a
// two-step tool call, on its mock model, telemetry on) with the
// OpenTelemetry JS exporter in protobuf and in JSON: the store holds the
// mock's usage exactly, once per provider call — not again for the SDK's
// outer spans, nor for a second run of the same calls.
func TestVercelAISDK(t *testing.T) {
	for _, protocol := range []string{"proto", "json"} {
		t.Run(protocol, func(t *testing.T) {
			in := newIngest(t)
			calls := runAISDK(t, in.url, protocol)
			if len(calls) != 4 {
				t.Fatalf("the script made %d provider calls, want 4: %+v", len(calls), calls)
			}
			check := func(when string) {
				t.Helper()
				want := map[string]tokenledger.ModelTotals{}
				var read, reasoning int64
				for _, c := range calls {
					m := want[c.Model]
					m.Model = c.Model
					m.PromptTokens += c.Input
					m.CompletionTokens += c.Output
					m.RequestCount++
					want[c.Model] = m
					read += c.CacheRead
					reasoning += c.Reasoning
				}
				models, err := in.svc.Models(context.Background(), 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(models) != len(want) {
					t.Errorf("%s: models %+v, want %d", when, models, len(want))
				}
				for _, m := range models {
					w := want[m.Model]
					if m.PromptTokens != w.PromptTokens || m.CompletionTokens != w.CompletionTokens || m.RequestCount != w.RequestCount {
						t.Errorf("%s: %s = %d+%d tokens in %d requests, want %d+%d in %d", when, m.Model,
							m.PromptTokens, m.CompletionTokens, m.RequestCount, w.PromptTokens, w.CompletionTokens, w.RequestCount)
					}
				}
				d, err := in.svc.TodayUsage(context.Background())
				if err != nil || d == nil {
					t.Fatalf("%s: today %v %v", when, d, err)
				}
				if d.CacheReadTokens != read || d.ReasoningTokens != reasoning || d.UniqueUsers != 1 || d.UniqueSessions != 3 {
					t.Errorf("%s: today has %d cache read, %d reasoning, %d users, %d sessions; want %d, %d, 1 (ada), 3",
						when, d.CacheReadTokens, d.ReasoningTokens, d.UniqueUsers, d.UniqueSessions, read, reasoning)
				}
			}
			check("after one run")
			runAISDK(t, in.url, protocol) // the same calls, the same response ids
			check("after the same calls again")
		})
	}
}
