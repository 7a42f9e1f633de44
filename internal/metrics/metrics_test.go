package metrics_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/metrics"
	"github.com/tokenledger/tokenledger/store/memstore"
)

var quiet = slog.New(slog.DiscardHandler)

// server is the HTTP API with metrics, over a memory store.
func server(t *testing.T, maxModels int, readKey string) (string, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(metrics.Options{MaxModels: maxModels})
	svc, err := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Logger: quiet, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Service: svc, Metrics: m, ReadKey: readKey, Logger: quiet}))
	t.Cleanup(srv.Close)
	return srv.URL, m
}

func post(t *testing.T, url, body string) int {
	t.Helper()
	res, err := http.Post(url+"/api/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// scrape reads /metrics with Prometheus's own text parser.
func scrape(t *testing.T, url, key string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the value of the family's series whose labels include
// want, summed (a counter's value, or a histogram's count).
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestCounters logs known traffic and reads it back from /metrics.
func TestCounters(t *testing.T) {
	url, _ := server(t, 0, "read-key-0123456789")
	post(t, url, `{"events":[{"id":"a","model":"gpt-4o","promptTokens":1000,"cacheReadTokens":200,"completionTokens":50,"reasoningTokens":10,"costUsd":0.25},
		{"id":"b","model":"claude-sonnet-4","promptTokens":7,"cacheWriteTokens":3,"completionTokens":1}]}`)
	post(t, url, `{"id":"a","model":"gpt-4o","promptTokens":1000,"completionTokens":50}`) // duplicate
	post(t, url, `{"model":"gpt-4o","promtTokens":5}`)                                    // refused: unknown field
	post(t, url, `{"events":[{"model":"x","promptTokens":1},{"model":"","promptTokens":1}]}`)

	res, _ := http.Get(url + "/metrics")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without the read key: %d", res.StatusCode)
	}
	res.Body.Close()
	f := scrape(t, url, "read-key-0123456789")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tokenledger_events_total", map[string]string{"result": "accepted"}, 2},
		{"tokenledger_events_total", map[string]string{"result": "duplicate"}, 1},
		// Two refused bodies: a body the decoder refuses counts as one,
		// whatever it held.
		{"tokenledger_events_total", map[string]string{"result": "refused"}, 2},
		{"tokenledger_tokens_total", map[string]string{"model": "gpt-4o", "type": "prompt"}, 1000},
		{"tokenledger_tokens_total", map[string]string{"model": "gpt-4o", "type": "cache_read"}, 200},
		{"tokenledger_tokens_total", map[string]string{"model": "gpt-4o", "type": "reasoning"}, 10},
		{"tokenledger_tokens_total", map[string]string{"model": "claude-sonnet-4", "type": "cache_write"}, 3},
		{"tokenledger_tokens_total", map[string]string{"model": "claude-sonnet-4", "type": "completion"}, 1},
		{"tokenledger_cost_usd_total", map[string]string{"model": "gpt-4o"}, 0.25},
		{"tokenledger_http_request_duration_seconds", map[string]string{"route": "/api/tokens", "method": "POST", "code": "200"}, 2},
		{"tokenledger_http_request_duration_seconds", map[string]string{"route": "/api/tokens", "method": "POST", "code": "400"}, 2},
	} {
		if got := value(f, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if f[name] == nil {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}
}

// TestModelLimit: 10,000 distinct model names leave at most 101 values of
// the model label (100, then "other"), and "other" holds the rest.
func TestModelLimit(t *testing.T) {
	url, _ := server(t, 0, "")
	var b strings.Builder
	for batch := range 10 {
		b.Reset()
		b.WriteString(`{"events":[`)
		for i := range 1000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"model":"m-%d-%d","promptTokens":1}`, batch, i)
		}
		b.WriteString(`]}`)
		if code := post(t, url, b.String()); code != http.StatusOK {
			t.Fatalf("batch %d: %d", batch, code)
		}
	}
	f := scrape(t, url, "")
	models := map[string]bool{}
	for _, m := range f["tokenledger_tokens_total"].Metric {
		for _, l := range m.Label {
			if l.GetName() == "model" {
				models[l.GetValue()] = true
			}
		}
	}
	if len(models) > 101 || !models[metrics.Other] {
		t.Errorf("%d model label values (other present: %v), want at most 101 with other", len(models), models[metrics.Other])
	}
	if got := value(f, "tokenledger_tokens_total", map[string]string{"model": metrics.Other}); got != 9900 {
		t.Errorf("other holds %v prompt tokens, want 9900", got)
	}
}
