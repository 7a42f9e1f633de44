package otlp_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/otlp"
)

// FuzzSpans decodes any body as OTLP protobuf or JSON and maps its spans:
// never a panic; every event it makes has counts within the ledger's
// bounds, a prompt that holds its cache parts and an id; every refusal is
// one sentence.
func FuzzSpans(f *testing.F) {
	for _, fill := range []func(m pcommon.Map){
		func(m pcommon.Map) {
			m.PutStr("gen_ai.response.model", "gpt-4o")
			m.PutInt("gen_ai.usage.input_tokens", 100)
			m.PutInt("gen_ai.usage.output_tokens", 5)
			m.PutInt("gen_ai.usage.cache_read.input_tokens", 60)
			m.PutStr("enduser.id", "u")
		},
		func(m pcommon.Map) {
			m.PutStr("ai.operationId", "ai.streamText.doStream")
			m.PutStr("gen_ai.request.model", "claude")
			m.PutDouble("gen_ai.usage.prompt_tokens", 7)
			m.PutStr("gen_ai.usage.completion_tokens", "3")
			m.PutInt("gen_ai.usage.cache_creation.input_tokens", 9)
		},
		func(m pcommon.Map) {
			m.PutStr("ai.operationId", "ai.generateText")
			m.PutInt("gen_ai.usage.input_tokens", 1)
		},
	} {
		req := oneSpan(fill)
		p, _ := req.MarshalProto()
		j, _ := req.MarshalJSON()
		f.Add(p, false)
		f.Add(j, true)
	}
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		format := otlp.Protobuf
		if asJSON {
			format = otlp.JSON
		}
		td, err := otlp.Decode(format, body)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("a decode error of more than one line: %q", err)
			}
			return
		}
		events, refused := otlp.Events(td)
		for _, e := range events {
			for _, n := range []int64{e.PromptTokens, e.CompletionTokens, e.CacheReadTokens, e.CacheWriteTokens, e.ReasoningTokens} {
				if n < 0 || n > tokenledger.MaxTokens*2 {
					t.Errorf("event %+v has a count out of bounds", e)
				}
			}
			if e.CacheReadTokens+e.CacheWriteTokens > e.PromptTokens || e.TotalTokens != e.PromptTokens+e.CompletionTokens || e.ID == "" {
				t.Errorf("event %+v: cache outside the prompt, a wrong total or no id", e)
			}
		}
		for _, r := range refused {
			if r.Why == "" || strings.Contains(r.Why, "\n") {
				t.Errorf("refusal %+v is not one sentence", r)
			}
		}
	})
}
