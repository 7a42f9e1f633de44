package capture_test

import (
	"os"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/capture"
)

// FuzzBody feeds any bytes to every provider's extractor, whole and as a
// stream: it must not panic, and a usage it returns must be within the
// ledger's limits with its buckets inside their totals.
func FuzzBody(f *testing.F) {
	for _, fx := range fixtures {
		if b, err := os.ReadFile("testdata/" + fx.file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"usage":{"prompt_tokens":1e400}}`))
	f.Add([]byte("data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-5}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, k := range []capture.Kind{capture.OpenAI, capture.Anthropic, capture.Gemini} {
			u, err := capture.Body(k, body)
			if err != nil {
				continue
			}
			for _, v := range []int64{u.Prompt, u.Completion, u.CacheRead, u.CacheWrite, u.Reasoning} {
				if v < 0 || v > tokenledger.MaxTokens {
					t.Fatalf("%s: count %d out of range in %+v", k, v, u)
				}
			}
			if u.CacheRead+u.CacheWrite > u.Prompt || u.Reasoning > u.Completion {
				t.Fatalf("%s: buckets overflow their totals: %+v", k, u)
			}
		}
	})
}
