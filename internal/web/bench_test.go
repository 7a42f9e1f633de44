package web_test

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/web"
)

// bigSample is the dashboard's benchmark data: 90 days × 50 models ×
// 1,000 users (every user active every day, each day's users spread over
// the 50 models: 1,000 events a day, 90,000 in all).
func bigSample(now time.Time) []map[string]any {
	out := make([]map[string]any, 0, 90_000)
	for back := range 90 {
		ts := now.AddDate(0, 0, -back).Format(time.RFC3339)
		for u := range 1000 {
			out = append(out, map[string]any{
				"id": fmt.Sprintf("b-%d-%d", back, u), "timestamp": ts,
				"model": fmt.Sprintf("model-%02d", (u+back)%50), "userId": fmt.Sprintf("user-%04d", u),
				"sessionId": fmt.Sprintf("s-%d", u%300), "promptTokens": 1000 + u, "cacheReadTokens": u % 500,
				"completionTokens": 200 + back, "costUsd": float64(u%97+1) / 10000,
			})
		}
	}
	return out
}

// percentile returns the p-th percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

// BenchmarkRangeRequest is the page's data request, GET
// /api/tokens?action=range&days=90, over 90 days × 50 models × 1,000
// users on the file store and on Redis: p50 and p99 of 100 requests.
func BenchmarkRangeRequest(b *testing.B) {
	for _, kind := range []string{"file", "redis"} {
		b.Run(kind, func(b *testing.B) {
			s := backend(b, kind, nil)
			s.post(b, bigSample(time.Now().UTC().Add(-time.Second)))
			url := s.url + "/api/tokens?action=range&days=90"
			read := func() time.Duration {
				start := time.Now()
				res, err := http.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != http.StatusOK {
					b.Fatalf("status %d, %v", res.StatusCode, err)
				}
				return time.Since(start)
			}
			// The first reads after 90,000 writes share the cores with the
			// store's own catching up (the file store folds its journal):
			// 20 reads first, not counted.
			for range 20 {
				read()
			}
			var ds []time.Duration
			for b.Loop() {
				for range 100 {
					ds = append(ds, read())
				}
			}
			b.ReportMetric(float64(percentile(ds, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(ds, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkFirstRender loads the page in headless Chromium five times
// over the same data (file store) and reports the median time from the
// end of the HTML's arrival to the page's "rendered" mark (every section
// drawn), from the browser's Performance API, and the page's total size
// gzipped.
func BenchmarkFirstRender(b *testing.B) {
	s := backend(b, "file", nil)
	s.post(b, bigSample(time.Now().UTC().Add(-time.Second)))
	tb := newTab(b, s, 1280, 900, "")
	var ms []time.Duration
	for b.Loop() {
		for range 5 {
			tb.open("/?days=90")
			var took float64
			tb.eval(`performance.getEntriesByName("tokenledger-rendered")[0].startTime - performance.getEntriesByType("navigation")[0].responseEnd`, &took)
			ms = append(ms, time.Duration(took*float64(time.Millisecond)))
		}
	}
	b.ReportMetric(float64(percentile(ms, 0.5).Microseconds())/1000, "render-p50-ms")
	b.ReportMetric(float64(web.GzipSize())/1024, "page-KiB-gzip")
	b.ReportMetric(0, "ns/op")
	tb.checkClean()
}
