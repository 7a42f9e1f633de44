package otlp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/metrics"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/filestore"
	"github.com/tokenledger/tokenledger/store/redis"
)

const (
	benchSpans    = 500 // spans (events) a request
	benchRequests = 40  // requests a format sends in a round
	benchRounds   = 3
	benchClients  = 4
)

// benchEvent is the i-th event of request r of run: 20 models, 100 users.
func benchEvent(run string, r, i int, now time.Time) tokenledger.Event {
	return tokenledger.Event{
		ID: fmt.Sprintf("%s-%d-%d", run, r, i), Model: "bench-m" + strconv.Itoa(i%20), UserID: "bench-u" + strconv.Itoa(i%100),
		PromptTokens: int64(100 + i), CompletionTokens: 20, TotalTokens: int64(120 + i), Timestamp: now,
	}
}

// tokensBody is POST /api/tokens's batch of request r's events.
func tokensBody(run string, r int, now time.Time) []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	ts := now.Format(time.RFC3339Nano)
	for i := range benchSpans {
		e := benchEvent(run, r, i, now)
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%q,"model":%q,"userId":%q,"promptTokens":%d,"completionTokens":%d,"totalTokens":%d,"timestamp":%q}`,
			e.ID, e.Model, e.UserID, e.PromptTokens, e.CompletionTokens, e.TotalTokens, ts)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// otlpBody is the same events as GenAI spans in one protobuf export.
func otlpBody(b *testing.B, run string, r int, now time.Time) []byte {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := range benchSpans {
		e := benchEvent(run, r, i, now)
		s := spans.AppendEmpty()
		s.SetName("chat " + e.Model)
		s.SetTraceID(pcommon.TraceID{byte(r), byte(r >> 8), byte(i), byte(i >> 8)})
		s.SetSpanID(pcommon.SpanID{byte(i), byte(i >> 8), 1})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		a := s.Attributes()
		a.PutStr("gen_ai.response.id", e.ID)
		a.PutStr("gen_ai.request.model", e.Model)
		a.PutStr("gen_ai.provider.name", "openai")
		a.PutInt("gen_ai.usage.input_tokens", e.PromptTokens)
		a.PutInt("gen_ai.usage.output_tokens", e.CompletionTokens)
		a.PutStr("enduser.id", e.UserID)
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// sendAll posts every body to url from benchClients clients and returns
// the events per second.
func sendAll(b *testing.B, url, contentType string, bodies [][]byte) float64 {
	work := make(chan []byte, len(bodies))
	for _, body := range bodies {
		work <- body
	}
	close(work)
	var wg sync.WaitGroup
	start := time.Now()
	for range benchClients {
		wg.Go(func() {
			for body := range work {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", contentType)
				req.Header.Set("Authorization", "Bearer otlp-api-key-0123456789")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				ans := ptraceotlp.NewExportResponse()
				if res.StatusCode != http.StatusOK || (contentType != "application/json" && (ans.UnmarshalProto(raw) != nil || ans.PartialSuccess().RejectedSpans() > 0)) {
					b.Errorf("%s: %d %q", url, res.StatusCode, raw)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(len(bodies)*benchSpans) / time.Since(start).Seconds()
}

// BenchmarkIngest sends the same kind of events as OTLP exports of 500
// GenAI spans and as POST /api/tokens batches of 500 events, alternately
// in rounds, to serve's handler (metrics on) on the file store and on
// Redis, over loopback HTTP from 4 clients: spans (events) per second
// each way, medians over the rounds, and OTLP's rate as a share of the
// batches'. Every event has its own id; the store's count is checked.
func BenchmarkIngest(b *testing.B) {
	for _, kind := range []string{"file", "redis"} {
		b.Run("store="+kind, func(b *testing.B) {
			for range b.N {
				benchIngest(b, kind)
			}
		})
	}
}

func benchIngest(b *testing.B, kind string) {
	var st tokenledger.Store
	var err error
	switch kind {
	case "file":
		st, err = filestore.Open(filepath.Join(b.TempDir(), "u.json"), filestore.Options{})
	case "redis":
		st, err = redis.OpenRedis(context.Background(), redis.RedisOptions{URL: redistest.Shared(b).URL(), KeyPrefix: redistest.Prefix(), Logger: quiet})
	}
	if err != nil {
		b.Fatal(err)
	}
	m := metrics.New(metrics.Options{})
	svc, err := tokenledger.NewService(tokenledger.Config{Store: m.Store(st), Logger: quiet, Observer: m})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Service: svc, Logger: quiet, Metrics: m, APIKey: "otlp-api-key-0123456789"}))
	defer srv.Close()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	now := time.Now().UTC()
	var otlpRates, tokenRates, ratios []float64
	for round := range benchRounds {
		var otlps, batches [][]byte
		for i := range benchRequests {
			otlps = append(otlps, otlpBody(b, run, 2*benchRequests*round+i, now))
			batches = append(batches, tokensBody(run, 2*benchRequests*round+benchRequests+i, now))
		}
		o := sendAll(b, srv.URL+"/v1/traces", "application/x-protobuf", otlps)
		t := sendAll(b, srv.URL+"/api/tokens", "application/json", batches)
		otlpRates, tokenRates, ratios = append(otlpRates, o), append(tokenRates, t), append(ratios, 100*o/t)
	}
	d, err := svc.TodayUsage(context.Background())
	if want := int64(benchRounds * 2 * benchRequests * benchSpans); err != nil || d == nil || d.RequestCount != want {
		b.Fatalf("the store holds %+v (%v), want %d requests", d, err, want)
	}
	b.ReportMetric(med(otlpRates), "otlp-spans/s")
	b.ReportMetric(med(tokenRates), "batch-events/s")
	b.ReportMetric(med(ratios), "otlp-%-of-batches")
}

func med(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
