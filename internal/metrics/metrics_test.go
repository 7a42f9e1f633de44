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
		// A body the decoder refuses counts as one, whatever it held; a
		// batch a rule refuses counts its events (here 2).
		{"tokenledger_events_total", map[string]string{"result": "refused"}, 3},
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

// TestModelLimit: 10^5 distinct model names, logged through the HTTP API,
// leave 101 values of the model label (the first 100, then "other") on
// every per-model series, a scrape no larger than after the first 1,000,
// and exact sums: each of the first 100 keeps its own tokens and cost,
// "other" holds all the rest.
func TestModelLimit(t *testing.T) {
	const models, batch = 100_000, tokenledger.MaxBatch
	url, _ := server(t, 0, "")
	prompt := func(n int) int { return 1 + n%7 } // the n-th model's prompt tokens
	var b strings.Builder
	var firstSize int
	var allPrompt, ownPrompt float64
	for start := 0; start < models; start += batch {
		b.Reset()
		b.WriteString(`{"events":[`)
		for n := start; n < start+batch; n++ {
			if n > start {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"model":"m-%d","promptTokens":%d,"completionTokens":1,"costUsd":0.5}`, n, prompt(n))
			allPrompt += float64(prompt(n))
			if n < metrics.DefaultMaxModels {
				ownPrompt += float64(prompt(n))
			}
		}
		b.WriteString(`]}`)
		if code := post(t, url, b.String()); code != http.StatusOK {
			t.Fatalf("events %d to %d: %d", start, start+batch, code)
		}
		if start == 0 {
			firstSize = len(scrapeText(t, url))
		}
	}
	// One of the first 100 again: it still has its own series.
	if code := post(t, url, `{"model":"m-7","promptTokens":1000}`); code != http.StatusOK {
		t.Fatalf("m-7 again: %d", code)
	}
	text := scrapeText(t, url)
	if len(text) > firstSize+firstSize/10 {
		t.Errorf("the scrape grew from %d bytes after 1,000 models to %d after 10^5", firstSize, len(text))
	}
	f := scrape(t, url, "")
	for _, name := range []string{"tokenledger_tokens_total", "tokenledger_cost_usd_total"} {
		labels := map[string]bool{}
		for _, m := range f[name].Metric {
			for _, l := range m.Label {
				if l.GetName() == "model" {
					labels[l.GetValue()] = true
				}
			}
		}
		if len(labels) != metrics.DefaultMaxModels+1 || !labels[metrics.Other] || !labels["m-0"] || !labels["m-99"] || labels["m-100"] {
			t.Errorf("%s: %d model label values (other: %v), want m-0 to m-99 and other", name, len(labels), labels[metrics.Other])
		}
	}
	own := float64(metrics.DefaultMaxModels)
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"model": "m-7", "type": "prompt"}, float64(prompt(7)) + 1000},
		{map[string]string{"model": "m-99", "type": "completion"}, 1},
		{map[string]string{"model": metrics.Other, "type": "prompt"}, allPrompt - ownPrompt},
		{map[string]string{"model": metrics.Other, "type": "completion"}, models - own},
		{map[string]string{"type": "prompt"}, allPrompt + 1000},
	} {
		if got := value(f, "tokenledger_tokens_total", c.labels); got != c.want {
			t.Errorf("tokenledger_tokens_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := value(f, "tokenledger_cost_usd_total", map[string]string{"model": metrics.Other}); got != (models-own)*0.5 {
		t.Errorf("other's cost is %v, want %v", got, (models-own)*0.5)
	}
	if got := value(f, "tokenledger_events_total", map[string]string{"result": "accepted"}); got != models+1 {
		t.Errorf("%v events accepted, want %d", got, models+1)
	}
}

// scrapeText reads /metrics as it is sent.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", res.StatusCode, err)
	}
	return string(b)
}
