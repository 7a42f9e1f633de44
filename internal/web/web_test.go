package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/internal/web"
)

func get(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// TestServing: the page and its files are served with their type, an
// ETag that answers 304, gzip when accepted, and the CSP; unknown files
// are the API's JSON 404 and other methods 405 — on serve and on the
// Vercel function behind vercel.json's rewrites.
func TestServing(t *testing.T) {
	for _, kind := range []string{"file", "vercel"} {
		t.Run(kind, func(t *testing.T) {
			s := backend(t, kind, nil)
			for path, ctype := range map[string]string{
				"/": "text/html; charset=utf-8", "/dashboard": "text/html; charset=utf-8",
				"/dashboard/app.js": "text/javascript; charset=utf-8", "/dashboard/chart.js": "text/javascript; charset=utf-8",
				"/dashboard/style.css": "text/css; charset=utf-8", "/dashboard/favicon.svg": "image/svg+xml",
			} {
				res, body := get(t, "GET", s.url+path, nil)
				if res.StatusCode != 200 || res.Header.Get("Content-Type") != ctype || len(body) == 0 {
					t.Errorf("GET %s = %d %q, %d bytes", path, res.StatusCode, res.Header.Get("Content-Type"), len(body))
				}
				if res.Header.Get("Content-Security-Policy") != web.CSP || res.Header.Get("Cache-Control") != "no-cache" {
					t.Errorf("GET %s headers %v", path, res.Header)
				}
				etag := res.Header.Get("ETag")
				if res, _ := get(t, "GET", s.url+path, map[string]string{"If-None-Match": etag}); etag == "" || res.StatusCode != http.StatusNotModified {
					t.Errorf("GET %s with If-None-Match %s = %d, want 304", path, etag, res.StatusCode)
				}
				res, gz := get(t, "GET", s.url+path, map[string]string{"Accept-Encoding": "gzip, br"})
				zr, err := gzip.NewReader(bytes.NewReader(gz))
				if err != nil || res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("ETag") == etag {
					t.Fatalf("GET %s gzipped: %v, %v", path, err, res.Header)
				}
				if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, body) {
					t.Errorf("GET %s: the gzipped body differs from the plain one", path)
				}
				if res, _ := get(t, "GET", s.url+path, map[string]string{"Accept-Encoding": "gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
					t.Errorf("GET %s with gzip;q=0 was gzipped", path)
				}
			}
			res, body := get(t, "GET", s.url+"/dashboard/nope.js", nil)
			if res.StatusCode != 404 || !strings.Contains(string(body), `"error"`) {
				t.Errorf("unknown file: %d %s", res.StatusCode, body)
			}
			if res, body := get(t, "GET", s.url+"/dashboard/index.html", nil); res.StatusCode != 404 {
				t.Errorf("the page under /dashboard/: %d %s", res.StatusCode, body)
			}
			if kind == "file" {
				if res, body := get(t, "POST", s.url+"/", nil); res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
					t.Errorf("POST /: %d %s", res.StatusCode, body)
				}
			}
			res, body = get(t, "GET", s.url+"/", nil)
			if strings.Contains(string(body), "<script>") || strings.Contains(string(body), " style=") || strings.Contains(string(body), "http://") || strings.Contains(string(body), "https://") {
				t.Error("the page has inline script or style, or an absolute URL")
			}
		})
	}
}

// TestPageBudget: page, scripts, styles and icon ≤ 120 KB gzipped.
func TestPageBudget(t *testing.T) {
	if n := web.GzipSize(); n > 120_000 || n < 1000 {
		t.Errorf("the dashboard is %d bytes gzipped, budget 120,000", n)
	}
}
