package serverless

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestTracesFunction: an OTLP export reaches the function under its own
// path and under vercel.json's rewrite (/api/traces), and each span
// counts once.
func TestTracesFunction(t *testing.T) {
	t.Chdir(t.TempDir())
	var inst Instance
	defer inst.Close()
	env := envOf(map[string]string{"VERCEL": "1", "TMPDIR": t.TempDir()})
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("chat gpt-4o")
	s.SetTraceID(pcommon.TraceID{9})
	s.SetSpanID(pcommon.SpanID{9})
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	s.Attributes().PutStr("gen_ai.request.model", "gpt-4o")
	s.Attributes().PutInt("gen_ai.usage.input_tokens", 7)
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/traces", "/api/traces"} {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		rec := httptest.NewRecorder()
		inst.Serve(rec, req, env)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-protobuf" {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	inst.Serve(rec, httptest.NewRequest(http.MethodGet, "/api/tokens?action=today", nil), env)
	if !strings.Contains(rec.Body.String(), `"requestCount":1,`) || !strings.Contains(rec.Body.String(), `"promptTokens":7,`) {
		t.Errorf("today after the same span twice: %s", rec.Body)
	}
}
