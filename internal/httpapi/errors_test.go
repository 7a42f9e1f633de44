package httpapi

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
)

func TestErrors(t *testing.T) {
	bigBody := `{"model":"m","promptTokens":1}` + strings.Repeat(" ", MaxBodyBytes)
	var batch strings.Builder
	batch.WriteString("[")
	for i := range tokenledger.MaxBatch + 1 {
		if i > 0 {
			batch.WriteString(",")
		}
		fmt.Fprintf(&batch, `{"model":"m","promptTokens":%d}`, i)
	}
	batch.WriteString("]")

	tests := []struct {
		name, method, target, ct, body string
		status                         int
		msg                            string
		field                          string
		index                          int // -1: no index member
	}{
		{"unknown field", "POST", "/api/tokens", "application/json", `{"model":"m","promtTokens":5}`,
			400, "promtTokens is not a known field; did you mean promptTokens? (see docs/api.md)", "promtTokens", -1},
		{"negative tokens", "POST", "/api/tokens", "application/json", `{"model":"m","promptTokens":-1}`,
			400, "promptTokens must be an integer from 0 to 1099511627776", "promptTokens", -1},
		{"huge tokens", "POST", "/api/tokens", "application/json", `{"model":"m","completionTokens":1099511627777}`,
			400, "completionTokens must be an integer from 0 to 1099511627776", "completionTokens", -1},
		{"fractional tokens", "POST", "/api/tokens", "application/json", `{"model":"m","promptTokens":1.5}`,
			400, "promptTokens must be an integer from 0 to 1099511627776", "promptTokens", -1},
		{"missing model", "POST", "/api/tokens", "application/json", `{"promptTokens":1}`,
			400, "model is required", "model", -1},
		{"bad event in a batch stores nothing", "POST", "/api/tokens", "application/json", `[{"model":"ok","promptTokens":1},{"promptTokens":1}]`,
			400, "event 1: model is required", "model", 1},
		{"future timestamp", "POST", "/api/tokens", "application/json", `[{"model":"ok"},{"model":"m","timestamp":"2026-11-27T12:06:00Z"}]`,
			400, "event 1: timestamp must not be more than 5 minutes in the future", "timestamp", 1},
		{"expired timestamp", "POST", "/api/tokens", "application/json", `{"model":"m","timestamp":"2026-08-28T23:59:59Z"}`,
			400, "event 0: timestamp is older than the retention window (90 days, oldest day kept is 2026-08-29)", "timestamp", 0},
		{"lone surrogate", "POST", "/api/tokens", "application/json", `[{"model":"m","userId":"\ud800"},{"model":"m","userId":"\udfff"}]`,
			400, `event 0: userId holds "\ud800", a lone UTF-16 surrogate, which is not a character`, "userId", 0},
		{"broken JSON", "POST", "/api/tokens", "application/json", `{"model":`,
			400, "the body is not valid JSON (it ends too early)", "", -1},
		{"empty body", "POST", "/api/tokens", "application/json", ``,
			400, `the body is empty; send one event, an array of events or {"events": [...]}`, "", -1},
		{"batch over 1000", "POST", "/api/tokens", "application/json", batch.String(),
			400, "a batch may hold at most 1000 events", "", -1},
		{"oversized body", "POST", "/api/tokens", "application/json", bigBody,
			413, "The body is larger than 1 MiB (1048576 bytes); send fewer events per request", "", -1},
		{"wrong content type", "POST", "/api/tokens", "text/plain", `{"model":"m"}`,
			415, "Content-Type must be application/json, not text/plain", "", -1},
		{"form content type", "POST", "/api/tokens", "application/x-www-form-urlencoded", `{"model":"m"}`,
			415, "Content-Type must be application/json, not application/x-www-form-urlencoded", "", -1},
		{"no content type", "POST", "/api/tokens", "", `{"model":"m"}`,
			415, "Content-Type must be application/json", "", -1},
		{"other charset", "POST", "/api/tokens", "application/json; charset=latin1", `{"model":"m"}`,
			415, "Content-Type must be application/json with charset utf-8 (or no charset)", "", -1},
		{"unknown action", "GET", "/api/tokens?action=week", "", "",
			400, "Invalid action. Valid actions: today, date, history, stats, all, models, users, range", "action", -1},
		{"empty action", "GET", "/api/tokens?action=", "", "",
			400, "Invalid action. Valid actions: today, date, history, stats, all, models, users, range", "action", -1},
		{"missing date", "GET", "/api/tokens?action=date", "", "",
			400, "Date parameter required for date action", "date", -1},
		{"no such month", "GET", "/api/tokens?action=date&date=2026-13-01", "", "",
			400, `date 2026-13-01 is not a real date: there is no month 13`, "date", -1},
		{"no such day", "GET", "/api/tokens?action=date&date=2026-02-30", "", "",
			400, `date 2026-02-30 is not a real date: February 2026 has 28 days`, "date", -1},
		{"bad date format", "GET", "/api/tokens?action=date&date=27.11.2026", "", "",
			400, `date must be a YYYY-MM-DD date, not "27.11.2026"`, "date", -1},
		{"empty date", "GET", "/api/tokens?action=date&date=", "", "",
			400, `date must be a YYYY-MM-DD date, not ""`, "date", -1},
		{"date with another action", "GET", "/api/tokens?action=today&date=2026-11-27", "", "",
			400, "date is not a parameter of action today (only of action date)", "date", -1},
		{"days not a number", "GET", "/api/tokens?action=history&days=abc", "", "",
			400, `days must be a whole number from 1 to 91, not "abc"`, "days", -1},
		{"days zero", "GET", "/api/tokens?action=history&days=0", "", "",
			400, `days must be a whole number from 1 to 91, not "0"`, "days", -1},
		{"days negative", "GET", "/api/tokens?action=all&days=-3", "", "",
			400, `days must be a whole number from 1 to 91, not "-3"`, "days", -1},
		{"days beyond retention", "GET", "/api/tokens?action=models&days=92", "", "",
			400, `days must be a whole number from 1 to 91, not "92"`, "days", -1},
		{"days fraction", "GET", "/api/tokens?action=users&days=7.5", "", "",
			400, `days must be a whole number from 1 to 91, not "7.5"`, "days", -1},
		{"days plus sign", "GET", "/api/tokens?action=history&days=%2B7", "", "",
			400, `days must be a whole number from 1 to 91, not "+7"`, "days", -1},
		{"days huge", "GET", "/api/tokens?action=history&days=99999999999999999999", "", "",
			400, `days must be a whole number from 1 to 91, not "99999999999999999999"`, "days", -1},
		{"days empty", "GET", "/api/tokens?action=history&days=", "", "",
			400, `days must be a whole number from 1 to 91, not ""`, "days", -1},
		{"days with stats", "GET", "/api/tokens?action=stats&days=30", "", "",
			400, "days is not a parameter of action stats (only of history, all, models, users and range)", "days", -1},
		{"action twice", "GET", "/api/tokens?action=today&action=stats", "", "",
			400, "action must be given at most once", "action", -1},
		{"unknown parameter", "GET", "/api/tokens?action=history&dyas=5", "", "",
			400, "dyas is not a parameter of GET /api/tokens, which takes action, date, days, since and until (see docs/api.md)", "dyas", -1},
		{"unknown parameter without action", "GET", "/api/tokens?from=2026-11-01", "", "",
			400, "from is not a parameter of GET /api/tokens, which takes action, date, days, since and until (see docs/api.md)", "from", -1},
		{"until after today", "GET", "/api/tokens?action=history&since=2026-12-01&until=2026-12-06", "", "",
			400, "until must not be after today (2026-11-27, UTC), not 2026-12-06", "until", -1},
		{"since after until", "GET", "/api/tokens?action=models&since=2026-11-20&until=2026-11-10", "", "",
			400, "since must not be after until, and 2026-11-20 is after 2026-11-10", "since", -1},
		{"since before the window", "GET", "/api/tokens?action=users&since=2026-08-28", "", "",
			400, "since must be within the retention window of 90 days, 2026-08-29 or later, not 2026-08-28", "since", -1},
		{"since not a date", "GET", "/api/tokens?action=all&since=yesterday", "", "",
			400, `since must be a YYYY-MM-DD date, not "yesterday"`, "since", -1},
		{"until not a real date", "GET", "/api/tokens?action=history&since=2026-11-01&until=2026-11-31", "", "",
			400, "until 2026-11-31 is not a real date: November 2026 has 30 days", "until", -1},
		{"until without since", "GET", "/api/tokens?action=history&until=2026-11-20", "", "",
			400, "until needs since, the first day of the range (YYYY-MM-DD)", "until", -1},
		{"days with since", "GET", "/api/tokens?action=history&days=3&since=2026-11-20", "", "",
			400, "days cannot be combined with since or until; give the last days, or the dates", "days", -1},
		{"since with stats", "GET", "/api/tokens?action=stats&since=2026-11-20", "", "",
			400, "since is not a parameter of action stats (only of history, all, models, users and range)", "since", -1},
		{"since twice", "GET", "/api/tokens?action=history&since=2026-11-20&since=2026-11-21", "", "",
			400, "since must be given at most once", "since", -1},
		{"wrong method", "PUT", "/api/tokens", "application/json", `{"model":"m"}`,
			405, "Method PUT is not allowed on /api/tokens; use GET, HEAD, POST, DELETE", "", -1},
		{"wrong method on test", "POST", "/api/test", "application/json", `{}`,
			405, "Method POST is not allowed on /api/test; use GET, HEAD", "", -1},
		{"unknown path", "GET", "/api/token", "", "",
			404, "No such endpoint: /api/token (see docs/api.md)", "", -1},
		{"trailing slash", "POST", "/api/tokens/", "application/json", `{"model":"m"}`,
			404, "No such endpoint: /api/tokens/ (see docs/api.md)", "", -1},
		// A path that is not in clean form is not redirected (ServeMux
		// would answer 307 text/html): it is an unknown path like any other.
		{"double slash", "GET", "//api/tokens", "", "",
			404, "No such endpoint: //api/tokens (see docs/api.md)", "", -1},
		{"double slash POST", "POST", "//api/tokens", "application/json", `{"model":"m"}`,
			404, "No such endpoint: //api/tokens (see docs/api.md)", "", -1},
		{"dot segment", "GET", "/api/./tokens", "", "",
			404, "No such endpoint: /api/./tokens (see docs/api.md)", "", -1},
		{"dot segment POST", "POST", "/api/./tokens", "application/json", `{"model":"m"}`,
			404, "No such endpoint: /api/./tokens (see docs/api.md)", "", -1},
		{"dot-dot segment POST", "POST", "/x/../api/tokens", "application/json", `{"model":"m"}`,
			404, "No such endpoint: /x/../api/tokens (see docs/api.md)", "", -1},
		{"dot-dot segment DELETE", "DELETE", "/x/../api/tokens", "", "",
			404, "No such endpoint: /x/../api/tokens (see docs/api.md)", "", -1},
		{"trailing dot", "GET", "/api/tokens/.", "", "",
			404, "No such endpoint: /api/tokens/. (see docs/api.md)", "", -1},
		{"inner double slash on test", "GET", "/api//test", "", "",
			404, "No such endpoint: /api//test (see docs/api.md)", "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.post(`{"id":"seed","model":"seed","promptTokens":7,"userId":"u"}`).wantStatus(t, 200)
			before := f.state()
			a := f.do(tc.method, tc.target, tc.ct, tc.body)
			a.wantStatus(t, tc.status)
			if a.body["error"] != tc.msg {
				t.Errorf("error =\n%q\nwant\n%q", a.body["error"], tc.msg)
			}
			if got, _ := a.body["field"].(string); got != tc.field {
				t.Errorf("field = %q, want %q", got, tc.field)
			}
			idx, hasIdx := a.body["index"]
			switch {
			case tc.index < 0 && hasIdx:
				t.Errorf("index = %v, want none", idx)
			case tc.index >= 0 && idx != float64(tc.index):
				t.Errorf("index = %v, want %d", idx, tc.index)
			}
			if wantMembers := 1 + boolInt(tc.field != "") + boolInt(tc.index >= 0); len(a.body) != wantMembers {
				t.Errorf("error body %s has extra members", a.raw)
			}
			if tc.status == 405 && a.header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
			if after := f.state(); after != before {
				t.Errorf("the store changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestOversizedChunkedBody(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	req := httptest.NewRequest("POST", "/api/tokens", strings.NewReader(`[`+strings.Repeat(`{"model":"m"},`, MaxBodyBytes/14)+`{"model":"m"}]`))
	req.ContentLength = -1 // as for a chunked upload: the limit must hold while reading
	req.Header.Set("Content-Type", "application/json")
	a := f.serve(req)
	a.wantStatus(t, 413)
	if f.state() != before {
		t.Error("the store changed")
	}
}

// TestContentEncodingMustBeIdentity: the server never decompresses a
// body, so a POST with any Content-Encoding other than identity is 415
// and stores nothing, whether the body really is compressed (which would
// otherwise be refused as "not valid UTF-8") or is plain JSON mislabelled
// (which would otherwise be stored).
func TestContentEncodingMustBeIdentity(t *testing.T) {
	const event = `{"model":"m","promptTokens":1}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(event))
	_ = zw.Close()

	refused := []struct {
		name, body string
		encodings  []string // one Content-Encoding header per element
		msg        string
	}{
		{"plain body labelled gzip", event, []string{"gzip"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not gzip"},
		{"gzip body", gz.String(), []string{"gzip"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not gzip"},
		{"deflate", event, []string{"deflate"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not deflate"},
		{"br in upper case", event, []string{"BR"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not BR"},
		{"identity then gzip", event, []string{"identity, gzip"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not identity, gzip"},
		{"gzip in a second header", event, []string{"identity", "gzip"},
			"The body must be sent uncompressed: Content-Encoding must be absent or identity, not identity, gzip"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.state()
			req := httptest.NewRequest("POST", "/api/tokens", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			for _, enc := range tc.encodings {
				req.Header.Add("Content-Encoding", enc)
			}
			a := f.serve(req)
			a.wantStatus(t, 415)
			if a.body["error"] != tc.msg || len(a.body) != 1 {
				t.Errorf("body %s, want {\"error\": %q}", a.raw, tc.msg)
			}
			if got := a.header.Get("Accept-Encoding"); got != "identity" {
				t.Errorf("Accept-Encoding = %q, want identity", got)
			}
			if f.state() != before {
				t.Error("the store changed")
			}
		})
	}

	for _, enc := range []string{"identity", "IDENTITY", " identity "} {
		f := newFixture(t)
		req := httptest.NewRequest("POST", "/api/tokens", strings.NewReader(event))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", enc)
		if a := f.serve(req); a.status != 200 {
			t.Errorf("Content-Encoding %q: %d %s, want 200", enc, a.status, a.raw)
		}
	}
}

func TestReset(t *testing.T) {
	seed := func(f *fixture) {
		f.post(`{"model":"m","promptTokens":5}`).wantStatus(t, 200)
	}
	t.Run("disabled without a key", func(t *testing.T) {
		f := newFixture(t, func(d *Deps) { d.AdminKey = "" })
		seed(f)
		before := f.state()
		a := f.do("DELETE", "/api/tokens", "", "", "Authorization", "Bearer ")
		a.wantStatus(t, 403)
		if want := "Reset is disabled: set TOKENLEDGER_ADMIN_KEY on the server and send it as Authorization: Bearer <key>"; a.body["error"] != want {
			t.Errorf("error = %q", a.body["error"])
		}
		if !strings.Contains(a.raw, "Bearer <key>") {
			t.Errorf("the answer escapes <key>: %s", a.raw)
		}
		if f.state() != before {
			t.Error("data changed")
		}
	})
	tests := []struct {
		name   string
		auth   string
		status int
		msg    string
	}{
		{"no header", "", 401, "Reset needs the admin key as Authorization: Bearer <TOKENLEDGER_ADMIN_KEY>"},
		{"basic auth", "Basic dXNlcjpwYXNz", 401, "Reset needs the admin key as Authorization: Bearer <TOKENLEDGER_ADMIN_KEY>"},
		{"empty bearer", "Bearer ", 401, "Reset needs the admin key as Authorization: Bearer <TOKENLEDGER_ADMIN_KEY>"},
		{"wrong key", "Bearer 0123456789abcdef-admim", 403, "The admin key is wrong; nothing was reset"},
		{"prefix of the key", "Bearer 0123456789abcdef", 403, "The admin key is wrong; nothing was reset"},
		{"key plus more", "Bearer " + adminKey + "x", 403, "The admin key is wrong; nothing was reset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			seed(f)
			before := f.state()
			a := f.do("DELETE", "/api/tokens", "", "", "Authorization", tc.auth)
			a.wantStatus(t, tc.status)
			if a.body["error"] != tc.msg {
				t.Errorf("error = %q, want %q", a.body["error"], tc.msg)
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if f.state() != before {
				t.Error("data changed")
			}
		})
	}
	t.Run("right key", func(t *testing.T) {
		f := newFixture(t)
		seed(f)
		a := f.do("DELETE", "/api/tokens", "", "", "Authorization", "bearer "+adminKey)
		a.wantStatus(t, 200)
		if got := jsonOf(t, a.body); got != `{"message":"All token usage data has been reset","timestamp":"2026-11-27T12:00:00.000Z"}` {
			t.Errorf("answer = %s", got)
		}
		if n := f.store.Events(); n != 0 {
			t.Errorf("%d events left after reset", n)
		}
	})
}
