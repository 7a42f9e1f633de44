package otlp_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

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
			attribute.Int("gen_ai.usage.input_tokens", 30), attribute.Int("gen_ai.usage.output_tokens", 9))
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
		req, _ := http.NewRequest(http.MethodPost, in.url+"/v1/traces", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer otlp-api-key-0123456789")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		ans := ptraceotlp.NewExportResponse()
		if res.StatusCode != http.StatusOK || ans.UnmarshalProto(raw) != nil {
			t.Fatalf("retry: %d %q", res.StatusCode, raw)
		}
		if n := ans.PartialSuccess().RejectedSpans(); n > 0 {
			answers = append(answers, ans.PartialSuccess().ErrorMessage())
		}
	}
	check("after the retry")
	if len(answers) != 1 || !strings.Contains(answers[0], `1 spans were not recorded; the first, "chat broken": gen_ai.usage.input_tokens is a Bool`) {
		t.Errorf("partialSuccess messages %q, want one naming the broken span", answers)
	}
}
