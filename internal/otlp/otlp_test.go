package otlp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/store/memstore"
)

var quiet = slog.New(slog.DiscardHandler)

// ingest is the HTTP API over a memory store, keeping a copy of every
// export body it receives (to send one again, as an exporter's retry).
type ingest struct {
	url    string
	svc    *tokenledger.Service
	mu     sync.Mutex
	bodies [][]byte
}

func newIngest(t *testing.T) *ingest {
	t.Helper()
	in := &ingest{}
	var err error
	in.svc, err = tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.NewServer(httpapi.Deps{Service: in.svc, Logger: quiet, APIKey: "otlp-api-key-0123456789"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		in.mu.Lock()
		in.bodies = append(in.bodies, b)
		in.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	in.url = srv.URL
	return in
}

// export sends spans through the real OpenTelemetry Go SDK and its
// OTLP/HTTP exporter (protobuf), the way an app's tracer does.
func export(t *testing.T, url string, emit func(ctx context.Context, tp *sdktrace.TracerProvider)) {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(url+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer otlp-api-key-0123456789"}), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	emit(context.Background(), tp)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// span ends a span named name with attrs.
func span(ctx context.Context, tp *sdktrace.TracerProvider, name string, attrs ...attribute.KeyValue) context.Context {
	ctx, s := tp.Tracer("test").Start(ctx, name)
	s.SetAttributes(attrs...)
	s.End()
	return ctx
}

// TestSDKExport sends GenAI spans with the real SDK: a plain provider
// call, an AI SDK call (outer span and inner doGenerate span), a
// two-step AI SDK call (two inner spans), a span without usage and one
// with a malformed count. The ledger holds each provider call once, with
// its tokens, model, provider, user and session; a retried export counts
// nothing twice.
func TestSDKExport(t *testing.T) {
	in := newIngest(t)
	export(t, in.url, func(ctx context.Context, tp *sdktrace.TracerProvider) {
		span(ctx, tp, "chat gpt-4o",
			attribute.String("gen_ai.response.id", "chatcmpl-otlp1"), attribute.String("gen_ai.request.model", "gpt-4o"),
			attribute.String("gen_ai.response.model", "gpt-4o-2024-08-06"), attribute.String("gen_ai.provider.name", "openai"),
			attribute.Int("gen_ai.usage.input_tokens", 1200), attribute.Int("gen_ai.usage.output_tokens", 300),
			attribute.Int("gen_ai.usage.cache_read.input_tokens", 1024), attribute.Int("gen_ai.usage.reasoning.output_tokens", 64),
			attribute.String("enduser.id", "ada"), attribute.String("gen_ai.conversation.id", "conv-1"))
		outer, s := tp.Tracer("ai").Start(ctx, "ai.generateText")
		s.SetAttributes(attribute.String("ai.operationId", "ai.generateText"), attribute.Int("ai.usage.promptTokens", 30), attribute.Int("ai.usage.completionTokens", 9),
			attribute.Int("gen_ai.usage.input_tokens", 30), attribute.Int("gen_ai.usage.output_tokens", 9),
			attribute.String("gen_ai.request.model", "claude-sonnet-4-20250514")) // countable but for the rule
		for _, step := range []int{10, 20} {
			span(outer, tp, "ai.generateText.doGenerate", attribute.String("ai.operationId", "ai.generateText.doGenerate"),
				attribute.String("gen_ai.system", "anthropic.messages"), attribute.String("gen_ai.request.model", "claude-sonnet-4-20250514"),
				attribute.Int("gen_ai.usage.input_tokens", step), attribute.Int("gen_ai.usage.output_tokens", step/10+3),
				attribute.String("ai.telemetry.metadata.userId", "bob"), attribute.String("ai.telemetry.metadata.sessionId", "sess-b"))
		}
		s.End()
		span(ctx, tp, "db.query", attribute.String("db.system", "postgresql"))
		span(ctx, tp, "chat broken", attribute.String("gen_ai.request.model", "x"), attribute.Bool("gen_ai.usage.input_tokens", true))
	})

	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		models, err := in.svc.Models(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]tokenledger.ModelTotals{}
		for _, m := range models {
			got[m.Model] = m
		}
		if g := got["gpt-4o-2024-08-06"]; g.PromptTokens != 1200 || g.CompletionTokens != 300 || g.RequestCount != 1 {
			t.Errorf("%s: gpt-4o = %+v", when, g)
		}
		if c := got["claude-sonnet-4-20250514"]; c.PromptTokens != 30 || c.CompletionTokens != 9 || c.RequestCount != 2 {
			t.Errorf("%s: claude (two doGenerate spans, the outer span not counted) = %+v", when, c)
		}
		if len(models) != 2 {
			t.Errorf("%s: models %+v", when, models)
		}
		users, _ := in.svc.Users(ctx, 1)
		if len(users) != 2 || users[0].UserID != "ada" || users[1].UserID != "bob" || users[1].RequestCount != 2 {
			t.Errorf("%s: users %+v", when, users)
		}
		d, _ := in.svc.TodayUsage(ctx)
		if d == nil || d.CacheReadTokens != 1024 || d.ReasoningTokens != 64 || d.UniqueSessions != 2 {
			t.Errorf("%s: today %+v", when, d)
		}
	}
	check("after the export")

	// The retry: every body again, as an exporter sends it after a timeout.
	in.mu.Lock()
	bodies := append([][]byte(nil), in.bodies...)
	in.mu.Unlock()
	var answers []string
	for _, b := range bodies {
		if _, msg := postExport(t, in.url, "application/x-protobuf", b); msg != "" {
			answers = append(answers, msg)
		}
	}
	check("after the retry")
	if len(answers) != 1 || !strings.Contains(answers[0], `1 spans were not recorded; the first, "chat broken": gen_ai.usage.input_tokens is a Bool`) {
		t.Errorf("partialSuccess messages %q, want one naming the broken span", answers)
	}

	// The same export in OTLP/JSON (the SDK's protobuf body re-encoded
	// with the OTLP JSON mapping) is the same spans: it counts nothing.
	for _, b := range bodies {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			t.Fatal(err)
		}
		js, err := req.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		postExport(t, in.url, "application/json", js)
	}
	check("after the same spans as JSON")
}

// postExport sends one export body and returns the answer's
// partialSuccess: the spans rejected and the message.
func postExport(t *testing.T, url, contentType string, body []byte) (int64, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer otlp-api-key-0123456789")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	ans := ptraceotlp.NewExportResponse()
	unmarshal := ans.UnmarshalProto
	if contentType == "application/json" {
		unmarshal = ans.UnmarshalJSON
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != contentType || unmarshal(raw) != nil {
		t.Fatalf("POST /v1/traces (%s): %d %s %q", contentType, res.StatusCode, res.Header.Get("Content-Type"), raw)
	}
	return ans.PartialSuccess().RejectedSpans(), ans.PartialSuccess().ErrorMessage()
}

// TestJSONExport posts OTLP/JSON as the specification writes it (hex ids,
// 64-bit integers as strings, camelCase fields), with the user on the
// resource: one event with the span's own id, tokens and user.
func TestJSONExport(t *testing.T) {
	in := newIngest(t)
	end := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"user.id","value":{"stringValue":"carol"}}]},
	  "scopeSpans":[{"scope":{"name":"openlit"},"spans":[
	    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat gpt-4o-mini","kind":3,
	     "startTimeUnixNano":"%d","endTimeUnixNano":"%d",
	     "attributes":[{"key":"gen_ai.system","value":{"stringValue":"openai"}},
	       {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o-mini"}},
	       {"key":"gen_ai.usage.prompt_tokens","value":{"intValue":"77"}},
	       {"key":"gen_ai.usage.completion_tokens","value":{"intValue":"12"}},
	       {"key":"gen_ai.usage.cache_read.input_tokens","value":{"doubleValue":5}}]},
	    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"chat bad",
	     "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"-4"}}]}]}]}]}`, end.Add(-time.Second).UnixNano(), end.UnixNano())
	rejected, msg := postExport(t, in.url, "application/json", []byte(body))
	if rejected != 1 || !strings.Contains(msg, "gen_ai.usage.input_tokens is -4") {
		t.Errorf("partialSuccess = %d %q, want the negative span refused", rejected, msg)
	}
	days, err := in.svc.Store().Days(context.Background(), tokenledger.DayQuery{From: tokenledger.DateOf(end), To: tokenledger.DateOf(end), Users: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 1 {
		t.Fatalf("days %+v, want the span's day", days)
	}
	d := days[0]
	m := d.Models["gpt-4o-mini"]
	if d.RequestCount != 1 || m.PromptTokens != 77 || m.CompletionTokens != 12 || d.CacheReadTokens != 5 || d.Users["carol"].RequestCount != 1 {
		t.Errorf("day %+v, want one gpt-4o-mini call of 77+12 tokens (5 cached) by carol", d)
	}
	if rejected, _ := postExport(t, in.url, "application/json", []byte(body)); rejected != 1 {
		t.Errorf("the resend rejected %d", rejected)
	}
	days, _ = in.svc.Store().Days(context.Background(), tokenledger.DayQuery{From: d.Date, To: d.Date})
	if days[0].RequestCount != 1 {
		t.Errorf("a resent span counted again: %d requests", days[0].RequestCount)
	}
}
