// Package otlp turns OpenTelemetry GenAI spans into usage events: it
// decodes an OTLP/HTTP trace export (protobuf or JSON, with the
// collector's pdata types) and maps each span that reports a provider
// call's usage onto one event. docs/api.md ("POST /v1/traces") has the
// rules.
package otlp

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/tokenledger/tokenledger"
)

// Format is an OTLP/HTTP encoding.
type Format int

// The two encodings of OTLP/HTTP.
const (
	Protobuf Format = iota
	JSON
)

// ContentType is the media type of f.
func (f Format) ContentType() string {
	if f == JSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// Decode reads an ExportTraceServiceRequest.
func Decode(f Format, body []byte) (ptrace.Traces, error) {
	req := ptraceotlp.NewExportRequest()
	var err error
	if f == JSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("the body is not an OTLP ExportTraceServiceRequest in %s: %s", f.ContentType(), oneLine(err.Error()))
	}
	return req.Traces(), nil
}

// oneLine keeps a decoder's message to one printable line: the JSON
// decoder appends the body around the fault (", error found in #N byte
// of ...|<body>|..."), which is cut, and any control character left
// becomes a space.
func oneLine(msg string) string {
	if i := strings.Index(msg, ", error found in #"); i >= 0 {
		msg = msg[:i]
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, msg)
}

// Answer encodes the ExportTraceServiceResponse: with partialSuccess
// when spans were refused, msg saying why.
func Answer(f Format, rejected int64, msg string) ([]byte, error) {
	res := ptraceotlp.NewExportResponse()
	if rejected > 0 {
		res.PartialSuccess().SetRejectedSpans(rejected)
		res.PartialSuccess().SetErrorMessage(msg)
	}
	if f == JSON {
		return res.MarshalJSON()
	}
	return res.MarshalProto()
}

// Refusal is a span that looked like a provider call's usage but could
// not be read as an event.
type Refusal struct {
	Span string // its name
	Why  string
}

// Events returns one event per span of td that reports a provider
// call's usage, and the spans refused. Other spans are skipped.
func Events(td ptrace.Traces) ([]tokenledger.Event, []Refusal) {
	var events []tokenledger.Event
	var refused []Refusal
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				span := spans.At(k)
				e, ok, err := Event(res, span)
				switch {
				case err != nil:
					refused = append(refused, Refusal{Span: span.Name(), Why: err.Error()})
				case ok:
					events = append(events, e)
				}
			}
		}
	}
	return events, refused
}

// Event maps one span. ok is false for a span that is not a provider
// call's usage: no gen_ai.usage attribute, or the Vercel AI SDK's outer
// span of a call (ai.generateText, …), whose inner doGenerate/doStream
// spans carry the same usage.
func Event(res pcommon.Map, span ptrace.Span) (e tokenledger.Event, ok bool, err error) {
	attrs := span.Attributes()
	if op, found := attrs.Get("ai.operationId"); found && !isProviderCall(op.AsString()) {
		return e, false, nil
	}
	get := func(names ...string) (int64, bool, error) { return count(attrs, names...) }
	input, hasIn, err := get("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
	if err != nil {
		return e, false, err
	}
	output, hasOut, err := get("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
	if err != nil {
		return e, false, err
	}
	if !hasIn && !hasOut {
		return e, false, nil
	}
	// The AI SDK puts a call's cache and reasoning parts only under its
	// own names (ai.usage.*), which follow the GenAI ones.
	var read, write, reasoning int64
	for _, f := range []struct {
		v     *int64
		names []string
	}{
		{&read, []string{"gen_ai.usage.cache_read.input_tokens", "ai.usage.inputTokenDetails.cacheReadTokens", "ai.usage.cachedInputTokens"}},
		{&write, []string{"gen_ai.usage.cache_creation.input_tokens", "ai.usage.inputTokenDetails.cacheWriteTokens"}},
		{&reasoning, []string{"gen_ai.usage.reasoning.output_tokens", "ai.usage.outputTokenDetails.reasoningTokens", "ai.usage.reasoningTokens"}},
	} {
		if *f.v, _, err = get(f.names...); err != nil {
			return e, false, err
		}
	}
	if read+write > input {
		// An instrumentation that follows Anthropic's meaning, with the
		// cache outside input_tokens: the ledger's prompt holds all input.
		input += read + write
	}
	e = tokenledger.Event{
		ID:        cmp.Or(str(attrs, "gen_ai.response.id"), spanID(span)),
		Timestamp: span.EndTimestamp().AsTime().UTC(),
		Model:     cmp.Or(str(attrs, "gen_ai.response.model"), str(attrs, "gen_ai.request.model")),
		Provider:  cmp.Or(str(attrs, "gen_ai.provider.name"), str(attrs, "gen_ai.system")),
		UserID:    lookup(attrs, res, "enduser.id", "user.id", "ai.telemetry.metadata.userId"),
		SessionID: lookup(attrs, res, "gen_ai.conversation.id", "session.id", "ai.telemetry.metadata.sessionId"),

		PromptTokens: input, CompletionTokens: output, CacheReadTokens: read, CacheWriteTokens: write, ReasoningTokens: reasoning,
		TotalTokens: input + output,
	}
	if span.EndTimestamp() == 0 {
		e.Timestamp = span.StartTimestamp().AsTime().UTC()
	}
	return e, true, nil
}

// isProviderCall reports whether an AI SDK operation id is a call to
// the provider (ai.generateText.doGenerate, ai.streamText.doStream, …).
func isProviderCall(op string) bool {
	return strings.HasSuffix(op, ".doGenerate") || strings.HasSuffix(op, ".doStream") || strings.HasSuffix(op, ".doEmbed")
}

// count returns the first of names present as a token count: an integer
// (or a whole double, or a decimal string, as some exporters write it)
// from 0 to MaxTokens.
func count(attrs pcommon.Map, names ...string) (int64, bool, error) {
	for _, name := range names {
		v, ok := attrs.Get(name)
		if !ok {
			continue
		}
		var n int64
		switch v.Type() {
		case pcommon.ValueTypeInt:
			n = v.Int()
		case pcommon.ValueTypeDouble:
			d := v.Double()
			if d != math.Trunc(d) || d < 0 || d > tokenledger.MaxTokens {
				return 0, false, fmt.Errorf("%s is %v, not a whole number of tokens", name, d)
			}
			n = int64(d)
		case pcommon.ValueTypeStr:
			var err error
			if n, err = strconv.ParseInt(v.Str(), 10, 64); err != nil {
				return 0, false, fmt.Errorf("%s is %q, not a whole number of tokens", name, v.Str())
			}
		default:
			return 0, false, fmt.Errorf("%s is a %s, not a number of tokens", name, v.Type())
		}
		if n < 0 || n > tokenledger.MaxTokens {
			return 0, false, fmt.Errorf("%s is %d, outside 0 to %d", name, n, int64(tokenledger.MaxTokens))
		}
		return n, true, nil
	}
	return 0, false, nil
}

// str returns a string attribute, or "".
func str(attrs pcommon.Map, name string) string {
	if v, ok := attrs.Get(name); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// lookup returns the first of names set on the span, else on its resource.
func lookup(span, res pcommon.Map, names ...string) string {
	for _, m := range []pcommon.Map{span, res} {
		for _, n := range names {
			if v := str(m, n); v != "" {
				return v
			}
		}
	}
	return ""
}

// spanID is the trace id and span id in hex: an exporter's retry of the
// same span gets the same event id.
func spanID(span ptrace.Span) string {
	t, s := span.TraceID(), span.SpanID()
	return hex.EncodeToString(t[:]) + "-" + hex.EncodeToString(s[:])
}
