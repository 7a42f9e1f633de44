package otlp_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// bare is the HTTP API over a memory store, with nothing in front of it
// that would read the body (newIngest's copy reads it whole), and the
// count of bytes the server has read from its connections.
func bare(t *testing.T) (string, *tokenledger.Service, *atomic.Int64) {
	t.Helper()
	svc, err := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(httpapi.NewServer(httpapi.Deps{Service: svc, Logger: quiet, APIKey: "otlp-api-key-0123456789"}))
	read := &atomic.Int64{}
	srv.Listener = countingListener{srv.Listener, read}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, svc, read
}

// countingListener counts the bytes read from every connection it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return countingConn{c, l.n}, err
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// TestGzipBomb streams a gzip of 1 GiB of zeros (about 1 MiB on the wire,
// the most deflate can pack) to the real handler over loopback, written
// as it is sent, never held whole. The server must answer 413 with the
// limit's sentence, stop after 4 MiB of decompressed body (the client
// reads at most about 520 KiB of the 1 MiB of gzip, and the process allocates far
// less than the 1 GiB it would take to read it), and store nothing.
func TestGzipBomb(t *testing.T) {
	const bomb = 1 << 30
	url, svc, serverRead := bare(t)

	// The stream is 1024 gzip members of 1 MiB of zeros each (RFC 1952:
	// a gzip file is a series of members; Go's reader, like gzip -d, reads
	// them all as one body). Compressing the 1 GiB itself would cost the
	// test seconds (tens under -race) for the same bytes on the wire.
	member := gz(make([]byte, 1<<20))
	pr, pw := io.Pipe()
	var plain, wire atomic.Int64
	sent := make(chan error, 1)
	go func() {
		var err error
		for plain.Load() < bomb && err == nil {
			var n int
			n, err = pw.Write(member)
			wire.Add(int64(n))
			if err == nil {
				plain.Add(1 << 20)
			}
		}
		pw.Close()
		sent <- err
	}()

	req, _ := http.NewRequest(http.MethodPost, url+"/v1/traces", pr)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer otlp-api-key-0123456789")

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// The transport closes the body when the connection ends: the
	// client's writes then fail. A server that read on would let it end.
	var werr error
	select {
	case werr = <-sent:
	case <-time.After(time.Minute):
		t.Fatal("the client was still sending a minute after its answer")
	}
	runtime.ReadMemStats(&after)

	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(answer), "larger than 4 MiB") {
		t.Errorf("got %d %q, want 413 saying the export is larger than 4 MiB", res.StatusCode, answer)
	}
	// The handler stops after 4 MiB of zeros (about 4 KiB of gzip);
	// net/http then discards up to 256 KiB of the unread body, twice (as
	// it writes the answer, and as it closes the body), hoping to keep the
	// connection, before it closes it. The rest may still fit in
	// loopback's socket buffers, so what the client wrote is only logged:
	// what the server read is the proof.
	t.Logf("the server read %d KiB of the %d KiB bomb; the client wrote %d KiB (%v)",
		serverRead.Load()>>10, len(member)*(bomb>>20)>>10, wire.Load()>>10, werr)
	if n := serverRead.Load(); n > (4+2*256+64)<<10 {
		t.Errorf("the server read %d KiB of the bomb, want at most 4 KiB + 2 x net/http's 256 KiB + 64 KiB", n>>10)
	}
	// Reading the body whole would allocate more than 1 GiB; the limit
	// keeps it to the 4 MiB buffer's growth, the gzip state and HTTP.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("the request allocated %d MiB, want < 64 MiB", alloc>>20)
	}
	days, err := svc.History(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		if d.RequestCount != 0 {
			t.Errorf("the bomb stored something: %+v", d)
		}
	}
}

// TestBodyLimitEdge: an export of exactly 4 MiB after gzip is read (and
// kept), one byte more is refused with 413; the same holds without gzip.
func TestBodyLimitEdge(t *testing.T) {
	url, _, _ := bare(t)
	// Valid OTLP JSON padded with spaces to the size wanted.
	pad := func(n int) []byte {
		b := []byte(`{"resourceSpans":[]}`)
		return append(b, bytes.Repeat([]byte{' '}, n-len(b))...)
	}
	for _, c := range []struct {
		name     string
		size     int
		encoding string
		status   int
	}{
		{"4 MiB gzipped", httpapi.MaxOTLPBytes, "gzip", 200},
		{"4 MiB + 1 gzipped", httpapi.MaxOTLPBytes + 1, "gzip", 413},
		{"4 MiB", httpapi.MaxOTLPBytes, "", 200},
		{"4 MiB + 1", httpapi.MaxOTLPBytes + 1, "", 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := pad(c.size)
			if c.encoding == "gzip" {
				body = gz(body)
			}
			status, answer := raw(t, url, "application/json", c.encoding, body)
			if status != c.status {
				t.Errorf("got %d %q, want %d", status, answer, c.status)
			}
		})
	}
}

// TestStackedEncodings: the body is gunzipped once at most. A gzip of a
// gzip (how a 1 KiB body could hold 1 GiB) is refused before it is read,
// whether its encodings come in one header or two.
func TestStackedEncodings(t *testing.T) {
	url, svc, _ := bare(t)
	valid := protoOf(t, oneSpan(func(m pcommon.Map) {
		m.PutStr("gen_ai.request.model", "gpt-4o")
		m.PutInt("gen_ai.usage.input_tokens", 10)
	}))
	twice := gz(gz(valid))
	for _, headers := range [][]string{{"gzip, gzip"}, {"gzip", "gzip"}, {"identity, gzip", "x-gzip"}} {
		t.Run(strings.Join(headers, "+"), func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/traces", bytes.NewReader(twice))
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("Authorization", "Bearer otlp-api-key-0123456789")
			for _, h := range headers {
				req.Header.Add("Content-Encoding", h)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(b), "one Content-Encoding") {
				t.Errorf("got %d %q, want 415 saying one Content-Encoding", res.StatusCode, b)
			}
		})
	}
	days, err := svc.History(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		if d.RequestCount != 0 {
			t.Errorf("a stacked encoding stored something: %+v", d)
		}
	}
}
