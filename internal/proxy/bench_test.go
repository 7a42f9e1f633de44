package proxy_test

import (
	"bufio"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const benchChat = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`

// benchClient has room for 64 clients' connections to each server.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}

// timed posts body to url and returns the time to the first byte of the
// answer's body and to its end.
func timed(b *testing.B, url, body string, headers ...string) (first, all time.Duration) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	res, err := benchClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	if _, err := br.ReadByte(); err != nil {
		b.Fatal(err)
	}
	first = time.Since(start)
	io.Copy(io.Discard, br)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("status %d", res.StatusCode)
	}
	return first, time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// BenchmarkOverhead calls the stand-in upstream directly and through the
// proxy, alternately, in one run: the p50 of a non-streamed chat call,
// the time to the first byte of a streamed one, and requests per second
// of non-streamed calls from 64 clients, with an upstream that answers at
// once and with one that takes 20 ms, as a model takes far longer.
func BenchmarkOverhead(b *testing.B) {
	h := newHarness(b, "")
	direct, proxied := h.up.URL+"/v1/chat/completions", h.url+"/proxy/openai/v1/chat/completions"
	stream := `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`
	var dAll, pAll, dFirst, pFirst []time.Duration
	var dRate, pRate, dSlow, pSlow float64
	h.up.Pause = 20 * time.Millisecond
	for b.Loop() {
		for range 300 {
			_, d := timed(b, direct, benchChat)
			_, p := timed(b, proxied, benchChat)
			dAll, pAll = append(dAll, d), append(pAll, p)
			d, _ = timed(b, direct, stream)
			p, _ = timed(b, proxied, stream)
			dFirst, pFirst = append(dFirst, d), append(pFirst, p)
		}
		for range 3 {
			dRate += rate(b, direct) / 3
			pRate += rate(b, proxied) / 3
			dSlow += rate(b, direct, "X-Fake", "delay") / 3
			pSlow += rate(b, proxied, "X-Fake", "delay") / 3
		}
	}
	b.ReportMetric(float64(median(dAll).Microseconds())/1000, "direct-p50-ms")
	b.ReportMetric(float64(median(pAll).Microseconds())/1000, "proxy-p50-ms")
	b.ReportMetric(float64((median(pAll)-median(dAll)).Microseconds())/1000, "added-p50-ms")
	b.ReportMetric(float64((median(pFirst)-median(dFirst)).Microseconds())/1000, "added-ttfb-ms")
	b.ReportMetric(dRate, "direct-req/s")
	b.ReportMetric(pRate, "proxy-req/s")
	b.ReportMetric(100*pRate/dRate, "proxy-%-of-direct")
	b.ReportMetric(100*pSlow/dSlow, "proxy-%-of-direct-20ms")
	b.ReportMetric(0, "ns/op")
}

// rate is requests per second of non-streamed calls to url from 64
// clients over one second.
func rate(b *testing.B, url string, headers ...string) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Second)
	for range 64 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				timed(b, url, benchChat, headers...)
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load())
}

// BenchmarkStreamMemory holds 200 slow streams open directly, then 200
// through the proxy, each read to its first event, and reports the heap
// the proxy adds per stream in flight (the difference of the two, over
// 200): the proxy keeps a stream's current event, not its body.
func BenchmarkStreamMemory(b *testing.B) {
	h := newHarness(b, "")
	h.up.Pause = 20 * time.Millisecond
	direct, proxied := h.up.URL+"/v1/messages", h.url+"/proxy/anthropic/v1/messages"
	body := `{"model":"claude-sonnet-4-20250514","max_tokens":9,"messages":[],"stream":true}`
	var perStream float64
	for b.Loop() {
		perStream = float64(heapWith(b, proxied, body)-heapWith(b, direct, body)) / 200
	}
	b.ReportMetric(perStream/1024, "KiB/stream")
	b.ReportMetric(0, "ns/op")
}

// heapWith opens 200 streams to url, reads each one's first line, and
// returns the heap in use while all are open.
func heapWith(b *testing.B, url, body string) int64 {
	var open, done sync.WaitGroup
	release := make(chan struct{})
	for range 200 {
		open.Add(1)
		done.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("X-Fake", "slow")
			res, err := benchClient.Do(req)
			if err != nil {
				b.Error(err)
				open.Done()
				return
			}
			bufio.NewReader(res.Body).ReadString('\n')
			open.Done()
			<-release
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		})
	}
	open.Wait()
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	close(release)
	done.Wait()
	return int64(m.HeapInuse)
}
