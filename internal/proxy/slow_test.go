package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/proxy"
	"github.com/tokenledger/tokenledger/internal/testkit/upstreamtest"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// Timeouts of the servers below: serve's shape (cmd/tokenledger
// defaultTimeouts: 10 s, 30 s, 60 s), shortened.
const (
	testReadHeader = 400 * time.Millisecond
	testRead       = time.Second
	testWrite      = time.Second
)

// timedServer serves the API with the proxy p in an http.Server with
// the test timeouts, and returns its address.
func timedServer(t *testing.T, p *proxy.Proxy) string {
	t.Helper()
	svc, _ := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Logger: quiet})
	srv := httptest.NewUnstartedServer(httpapi.NewServer(httpapi.Deps{Service: svc, Proxy: p, Logger: quiet}))
	srv.Config.ReadHeaderTimeout, srv.Config.ReadTimeout, srv.Config.WriteTimeout = testReadHeader, testRead, testWrite
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// proxyTo is a proxy whose built-in upstreams are all up, with the
// given upstream timeout, counting what it records in *recorded.
func proxyTo(t *testing.T, up *upstreamtest.Server, timeout time.Duration, recorded *atomic.Int64) *proxy.Proxy {
	t.Helper()
	ups, err := proxy.Upstreams(map[string]string{"openai": up.URL, "anthropic": up.URL, "gemini": up.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return proxy.New(proxy.Options{Upstreams: ups, WriteError: httpapi.WriteError, Logger: quiet, UpstreamTimeout: timeout,
		Record: func(context.Context, tokenledger.Event) error { recorded.Add(1); return nil }})
}

// TestStreamOutlivesWriteTimeout: a stream that takes three times the
// server's WriteTimeout (serve's is 60 s, a model may stream for
// minutes) reaches the client whole and is recorded: the proxy's own
// bound, UpstreamTimeout, replaces the server's for its answers.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	t.Parallel() // with TestClientThatNeverReads, after the tests that measure the heap
	up := upstreamtest.Start()
	defer up.Close()
	up.Pause = 300 * time.Millisecond // 10 events: 3 s
	var recorded atomic.Int64
	addr := timedServer(t, proxyTo(t, up, time.Minute, &recorded))
	start := time.Now()
	res, body := send(t, "http://"+addr+"/proxy/anthropic/v1/messages",
		`{"model":"claude-sonnet-4-20250514","max_tokens":9,"messages":[],"stream":true}`, "X-Fake", "slow")
	took := time.Since(start)
	if res.StatusCode != http.StatusOK || !strings.HasSuffix(body, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") || took < 3*testWrite {
		t.Fatalf("after %v: %d, stream ends %q", took, res.StatusCode, body[max(0, len(body)-60):])
	}
	for deadline := time.Now().Add(5 * time.Second); recorded.Load() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d recorded, want 1", recorded.Load())
		}
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// countingWriter counts the bytes written to it.
type countingWriter struct{ n *atomic.Int64 }

func (c countingWriter) Write(b []byte) (int, error) { c.n.Add(int64(len(b))); return len(b), nil }

// TestEndlessUpstreamsAndSlowClients puts the proxy under the attacks a
// public port sees, all at once: 23 calls to streams that never end (20
// of Chat Completions events, 3 of one SSE line that never ends, the
// first of them with usage injected, so that the line is held and not
// passed on), 40 clients that send a body a byte at a time and 40 that
// send their headers so. The proxy's memory must not follow the bytes
// that stream through it (each stream keeps at most one event of at most
// 1 MiB), every endless call must be cut at UpstreamTimeout, every slow
// sender at the server's read timeouts without anything forwarded, and
// afterwards the goroutines and the heap are back where they were.
func TestEndlessUpstreamsAndSlowClients(t *testing.T) {
	up := upstreamtest.Start()
	defer up.Close()
	up.Pause = 5 * time.Millisecond
	const timeout = 2500 * time.Millisecond
	var recorded atomic.Int64
	addr := timedServer(t, proxyTo(t, up, timeout, &recorded))
	goroutines0, heap0 := runtime.NumGoroutine(), liveHeap()
	start := time.Now()

	type end struct {
		what string
		at   time.Duration
		err  error
	}
	ends := make(chan end, 200)
	var streamed atomic.Int64
	var wg sync.WaitGroup
	stream := func(what, body, fake string) {
		defer wg.Done()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/proxy/openai/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("X-Fake", fake)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.Copy(countingWriter{&streamed}, res.Body)
			res.Body.Close()
		}
		ends <- end{what, time.Since(start), err}
	}
	const events, lines = 20, 3
	for range events {
		wg.Add(1)
		go stream("events", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`, "endless")
	}
	for i := range lines { // the first with usage injected: the line is held, never passed on
		wg.Add(1)
		go stream("line", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":`+fmt.Sprint(i > 0)+`},"messages":[]}`, "endless-line")
	}
	// Slow senders: a body, or the headers, a byte every 100 ms.
	for i := range 80 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, addr)
			if c == nil {
				return
			}
			defer c.Close()
			what, msg := "slow body", strings.Repeat("x", 1000)
			if i%2 == 0 {
				what, msg = "slow headers", "POST /proxy/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Padding: "+strings.Repeat("p", 100)+"\r\n\r\n"
			} else {
				fmt.Fprintf(c, "POST /proxy/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(msg))
			}
			ends <- end{what, trickleUntilCut(c, msg, 100*time.Millisecond, start), nil}
		}()
	}

	time.Sleep(time.Second - time.Since(start))
	heap1, bytes1 := liveHeap(), streamed.Load()
	time.Sleep(2*time.Second - time.Since(start))
	heap2, bytes2 := liveHeap(), streamed.Load()
	t.Logf("heap %.1f MiB at the start, %.1f MiB after %.1f MB streamed, %.1f MiB after %.1f MB",
		mib(heap0), mib(heap1), float64(bytes1)/1e6, mib(heap2), float64(bytes2)/1e6)
	if grew := int64(heap1) - int64(heap0); grew > 32<<20 {
		t.Errorf("the heap grew by %.1f MiB with %d endless streams and 80 slow clients; the bound is 32 MiB", mib(uint64(grew)), events+lines)
	}
	if grew, passed := int64(heap2)-int64(heap1), bytes2-bytes1; grew > 2<<20 || passed < 5e6 {
		t.Errorf("while %.1f MB more streamed through, the heap grew by %.1f MiB: want at least 5 MB through and at most 2 MiB of growth",
			float64(passed)/1e6, float64(grew)/(1<<20))
	}

	wg.Wait()
	close(ends)
	for e := range ends {
		var lo, hi time.Duration
		switch e.what {
		case "slow body":
			lo, hi = testRead-200*time.Millisecond, testRead+time.Second
		case "slow headers":
			lo, hi = testReadHeader-100*time.Millisecond, testReadHeader+time.Second
		default:
			lo, hi = timeout, timeout+time.Second
			if e.err == nil {
				t.Errorf("an endless %s answer ended cleanly at %v; it should be cut", e.what, e.at)
			}
		}
		if e.at < lo || e.at > hi {
			t.Errorf("a %s call ended after %v, want %v to %v", e.what, e.at, lo, hi)
		}
	}
	if n := len(up.Requests()); n != events+lines || recorded.Load() != 0 {
		t.Errorf("the upstream got %d requests (want %d: a slow sender's must not be forwarded), %d recorded", n, events+lines, recorded.Load())
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		g, h := runtime.NumGoroutine(), liveHeap()
		if g <= goroutines0+4 && int64(h)-int64(heap0) < 4<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the attack: %d goroutines (%d before), heap %.1f MiB (%.1f before)", g, goroutines0, mib(h), mib(heap0))
		}
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return nil
	}
	return c
}

// trickleUntilCut writes msg to c a byte per gap until the server closes
// the connection (or answers and closes) and returns when, since start.
func trickleUntilCut(c net.Conn, msg string, gap time.Duration, start time.Time) time.Duration {
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(closed)
	}()
	for i := 0; i < len(msg); i++ {
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(gap):
		}
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			return time.Since(start)
		}
	}
	<-closed
	return time.Since(start)
}

// TestEndlessWholeBody: an answer that is not a stream is kept to read
// its usage, up to 8 MiB (MaxWholeBody); an endless one is dropped there,
// so the heap rises while the first megabytes pass and falls back after
// 8 MiB though the answer goes on, until it is cut at UpstreamTimeout.
func TestEndlessWholeBody(t *testing.T) {
	up := upstreamtest.Start()
	defer up.Close()
	up.Pause = 5 * time.Millisecond
	const timeout = 3 * time.Second
	var recorded atomic.Int64
	addr := timedServer(t, proxyTo(t, up, timeout, &recorded))
	heap0 := liveHeap()
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/proxy/openai/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
	req.Header.Set("X-Fake", "endless")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var passed int64
	var heapKept, heapDropped uint64
	buf := make([]byte, 64<<10)
	for {
		n, err := res.Body.Read(buf)
		passed += int64(n)
		if heapKept == 0 && passed > 6<<20 {
			heapKept = liveHeap()
		}
		if heapDropped == 0 && passed > 12<<20 {
			heapDropped = liveHeap()
		}
		if err != nil {
			break
		}
	}
	res.Body.Close()
	took := time.Since(start)
	t.Logf("%.1f MB in %v; heap %.1f MiB at the start, %.1f MiB after 6 MiB, %.1f MiB after 12 MiB", float64(passed)/1e6, took, mib(heap0), mib(heapKept), mib(heapDropped))
	if heapDropped == 0 {
		t.Fatalf("only %.1f MB passed before the cut at %v; the test needs 12 MiB", float64(passed)/1e6, took)
	}
	if kept := int64(heapKept) - int64(heap0); kept < 5<<20 {
		t.Errorf("after 6 MiB of the answer the heap is up %.1f MiB only: the measure does not see the body kept", float64(kept)/(1<<20))
	}
	if dropped := int64(heapDropped) - int64(heap0); dropped > 2<<20 {
		t.Errorf("after 12 MiB of the answer the heap is still up %.1f MiB: the body past 8 MiB is kept", float64(dropped)/(1<<20))
	}
	if took < timeout || took > timeout+time.Second || recorded.Load() != 0 {
		t.Errorf("the endless answer ended after %v (want the cut at %v), %d recorded", took, timeout, recorded.Load())
	}
}

// TestClientThatNeverReads: a client that sends its call and reads
// nothing of an endless answer holds the proxy's write until
// UpstreamTimeout plus the 5 s margin, and is cut off then.
func TestClientThatNeverReads(t *testing.T) {
	t.Parallel() // it mostly waits
	up := upstreamtest.Start()
	defer up.Close()
	up.Pause = 5 * time.Millisecond
	const timeout = time.Second
	var recorded atomic.Int64
	p := proxyTo(t, up, timeout, &recorded)
	addr := timedServer(t, p)
	start := time.Now()
	c := dial(t, addr)
	if c == nil {
		return
	}
	defer c.Close()
	body := `{"model":"gpt-4o","messages":[]}`
	fmt.Fprintf(c, "POST /proxy/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Fake: endless\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	time.Sleep(timeout + 2*time.Second)
	if p.NoUsage.Load() != 0 {
		t.Fatalf("the call ended within %v: the client's reading was not what held it, and the test proves nothing", time.Since(start))
	}
	time.Sleep(timeout + 5*time.Second + time.Second - time.Since(start))
	if p.NoUsage.Load() != 1 {
		t.Errorf("a client that never reads still holds its call after %v", time.Since(start))
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the connection is still open after %v (%d bytes were waiting)", time.Since(start), n)
	}
}
