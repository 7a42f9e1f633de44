package otlp_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// oneSpan returns an export of one span, with attrs set by fill.
func oneSpan(fill func(m pcommon.Map)) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("chat")
	s.SetTraceID(pcommon.TraceID{1, 2, 3})
	s.SetSpanID(pcommon.SpanID{4, 5, 6})
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute)))
	fill(s.Attributes())
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func protoOf(t *testing.T, req ptraceotlp.ExportRequest) []byte {
	t.Helper()
	b, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// raw posts body as it is and returns the status and the answer.
func raw(t *testing.T, url, contentType, encoding string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer otlp-api-key-0123456789")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// nested returns an attribute value nested depth kvlists deep, in JSON.
func nestedJSON(depth int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"deep","attributes":[`)
	for range depth {
		b.WriteString(`{"key":"k","value":{"kvlistValue":{"values":[`)
	}
	for range depth {
		b.WriteString(`]}}}`)
	}
	b.WriteString(`]}]}]}]}`)
	return b.Bytes()
}

// nestedProto is the same in protobuf: each level a KeyValue whose
// AnyValue is a KeyValueList holding the next. The sizes are worked out
// from the innermost level out, then the bytes are written outermost
// first, so building it is linear in depth.
func nestedProto(depth int) []byte {
	// KeyValue{key:"k" (field 1), value (field 2): AnyValue{kvlist_value (field 6): KeyValueList{values (field 1): next}}}
	kv, anyv, list := make([]int, depth+1), make([]int, depth+1), make([]int, depth+1)
	for i := 1; i <= depth; i++ {
		list[i] = 1 + varintLen(kv[i-1]) + kv[i-1]
		anyv[i] = 1 + varintLen(list[i]) + list[i]
		kv[i] = 3 + 1 + varintLen(anyv[i]) + anyv[i]
	}
	inner := make([]byte, 0, kv[depth])
	for i := depth; i >= 1; i-- {
		inner = append(inner, 1<<3|2, 1, 'k')
		inner = appendVarint(append(inner, 2<<3|2), uint64(anyv[i]))
		inner = appendVarint(append(inner, 6<<3|2), uint64(list[i]))
		inner = appendVarint(append(inner, 1<<3|2), uint64(kv[i-1]))
	}
	span := append(protoLen(5, []byte("deep")), protoLen(9, inner)...) // Span.name = 5, Span.attributes = 9
	scope := protoLen(2, span)                                         // ScopeSpans.spans = 2
	rs := protoLen(2, scope)                                           // ResourceSpans.scope_spans = 2
	return protoLen(1, rs)                                             // ExportTraceServiceRequest.resource_spans = 1
}

// varintLen is the length of v as a protobuf varint.
func varintLen(v int) int { return len(appendVarint(nil, uint64(v))) }

// protoLen encodes a length-delimited protobuf field.
func protoLen(field int, b []byte) []byte {
	out := appendVarint(nil, uint64(field<<3|2))
	out = appendVarint(out, uint64(len(b)))
	return append(out, b...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// TestHostileBodies: malformed, huge, deep and mistyped exports are
// answered with 400 (413, 415) and one sentence, or kept in part with
// partialSuccess; nothing panics and nothing malformed is stored.
func TestHostileBodies(t *testing.T) {
	in := newIngest(t)
	valid := protoOf(t, oneSpan(func(m pcommon.Map) {
		m.PutStr("gen_ai.request.model", "gpt-4o")
		m.PutInt("gen_ai.usage.input_tokens", 10)
		m.PutInt("gen_ai.usage.output_tokens", 2)
	}))
	// 10^6 empty attributes (Span.attributes is field 9), written by hand:
	// pcommon.Map.PutEmpty looks for the key first, which is quadratic.
	million := protoLen(1, protoLen(2, protoLen(2, append(protoLen(5, []byte("chat")), bytes.Repeat(protoLen(9, nil), 1_000_000)...))))
	wrong := func(put func(v pcommon.Value)) []byte {
		return protoOf(t, oneSpan(func(m pcommon.Map) {
			m.PutStr("gen_ai.request.model", "gpt-4o")
			put(m.PutEmpty("gen_ai.usage.input_tokens"))
		}))
	}
	for _, c := range []struct {
		name, contentType, encoding string
		body                        []byte
		status                      int
		say                         string // in the answer
	}{
		{"truncated protobuf", "application/x-protobuf", "", valid[:len(valid)/2], 400, "not an OTLP ExportTraceServiceRequest"},
		{"text as protobuf", "application/x-protobuf", "", []byte("hello, collector"), 400, "not an OTLP ExportTraceServiceRequest"},
		{"truncated JSON", "application/json", "", []byte(`{"resourceSpans":[{"scopeSpans":[`), 400, "not an OTLP ExportTraceServiceRequest"},
		{"JSON of the wrong shape", "application/json", "", []byte(`{"resourceSpans":"all of them"}`), 400, "not an OTLP ExportTraceServiceRequest"},
		// pdata reads JSON this deep (the span has no usage: kept, nothing
		// counted); its protobuf decoder stops at 10,000 levels.
		{"deep JSON", "application/json", "", nestedJSON(60_000), 200, `{"partialSuccess":{}}`},
		{"deep protobuf", "application/x-protobuf", "", nestedProto(12_000), 400, "exceeded max recursion depth"},
		{"a million attributes", "application/x-protobuf", "", million, 200, ""},
		// The gzip bomb, the 4 MiB edge and stacked encodings: bomb_test.go.
		{"not gzip", "application/x-protobuf", "gzip", valid, 400, "not gzip data"},
		{"brotli", "application/x-protobuf", "br", valid, 415, "not \\\"br\\\""},
		{"text/plain", "text/plain", "", valid, 415, "application/x-protobuf or application/json"},
		{"count as a list", "application/x-protobuf", "", wrong(func(v pcommon.Value) { v.SetEmptySlice().AppendEmpty().SetInt(5) }), 200, "is a Slice, not a number of tokens"},
		{"count as bytes", "application/x-protobuf", "", wrong(func(v pcommon.Value) { v.SetEmptyBytes().FromRaw([]byte{1}) }), 200, "is a Bytes, not a number of tokens"},
		{"count as a fraction", "application/x-protobuf", "", wrong(func(v pcommon.Value) { v.SetDouble(1.5) }), 200, "not a whole number of tokens"},
		{"count as words", "application/x-protobuf", "", wrong(func(v pcommon.Value) { v.SetStr("ten") }), 200, "not a whole number of tokens"},
		{"absurd count", "application/x-protobuf", "", wrong(func(v pcommon.Value) { v.SetInt(1 << 62) }), 200, "outside 0 to"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, answer := raw(t, in.url, c.contentType, c.encoding, c.body)
			if status != c.status || !strings.Contains(answer, c.say) {
				t.Errorf("got %d %q, want %d saying %q", status, answer, c.status, c.say)
			}
			if status != 200 && strings.Count(strings.TrimSpace(answer), "\n") > 0 {
				t.Errorf("the error is more than one line: %q", answer)
			}
		})
	}
	days, err := in.svc.History(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		if d.RequestCount != 0 {
			t.Errorf("a hostile body stored something: %+v", d)
		}
	}
}
