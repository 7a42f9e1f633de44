// Package web is the dashboard: one page, its script and styles, embedded
// in the binary and served by serve and the Vercel function. The page
// reads only the public API (GET /api/tokens?action=range, GET /api/test);
// the HTML holds no usage data. docs/dashboard.md says what it shows.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// PageFile is the page's name among the files.
const PageFile = "index.html"

// CSP lets the page load only its own files and talk only to its own
// origin: no inline script, no CDN, nothing that leaves the origin.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"

// file is one embedded file, ready to serve plain or gzipped.
type file struct {
	name, ctype string
	plain, gz   []byte
	etag        string // of the plain bytes; the gzipped ones add "-gz"
}

// files are the embedded files by name, loaded once.
var files = sync.OnceValue(func() map[string]*file {
	out := map[string]*file{}
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		panic("web: embedded files unreadable: " + err.Error())
	}
	for _, e := range entries {
		b, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			panic("web: embedded file unreadable: " + err.Error())
		}
		sum := sha256.Sum256(b)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		out[e.Name()] = &file{
			name: e.Name(), ctype: ctype, plain: b, gz: gz.Bytes(),
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]),
		}
	}
	return out
})

// Names lists the embedded files (the page and its assets).
func Names() []string {
	var out []string
	for n := range files() {
		out = append(out, n)
	}
	return out
}

// GzipSize is the total size of every embedded file gzipped, as served to
// a browser.
func GzipSize() int {
	n := 0
	for _, f := range files() {
		n += len(f.gz)
	}
	return n
}

// Page serves the dashboard's HTML.
func Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, files()[PageFile]) })
}

// Assets serves /dashboard/{asset}: the page's script, styles and icon.
// Any other name goes to notFound.
func Assets(notFound http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ServeAsset(w, r, r.PathValue("asset")) {
			notFound.ServeHTTP(w, r)
		}
	})
}

// ServeAsset serves the asset called name and reports whether there is
// one (the page itself is not an asset).
func ServeAsset(w http.ResponseWriter, r *http.Request, name string) bool {
	f, ok := files()[name]
	if !ok || name == PageFile {
		return false
	}
	serve(w, r, f)
	return true
}

// serve writes f with its ETag, revalidated on every use (no-cache: a new
// binary's page is picked up at once, an unchanged one costs a 304), and
// gzipped for a client that accepts it.
func serve(w http.ResponseWriter, r *http.Request, f *file) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", CSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Add("Vary", "Accept-Encoding")
	body, etag := f.plain, f.etag+`"`
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = f.gz, f.etag+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding value allows gzip (and
// does not refuse it with q=0).
func acceptsGzip(v string) bool {
	for part := range strings.SplitSeq(v, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
