package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardLooks saves screenshots for a reviewer (desktop, mobile,
// dark, empty state) under the test's artifact directory (go test
// -artifacts keeps them; scripts/test.sh passes it) and checks that the
// 375 px layout does not scroll sideways.
func TestDashboardLooks(t *testing.T) {
	out := t.ArtifactDir()
	s := backend(t, "file", nil)
	s.post(t, sample(time.Now().UTC().Add(-time.Second)))

	tb := newTab(t, s, 1280, 900, "")
	tb.open("/?days=30")
	tb.screenshot(out, "desktop")
	tb.dark()
	tb.screenshot(out, "dark")
	tb.checkClean()

	m := newTab(t, s, 375, 800, "")
	m.mobile()
	m.open("/?days=90")
	if v := m.view(); v.InnerW != 375 || v.ScrollW > v.InnerW {
		t.Errorf("at 375 px the page is %d px wide in a %d px viewport: it scrolls sideways", v.ScrollW, v.InnerW)
	}
	m.screenshot(out, "mobile")
	m.checkClean()

	empty := backend(t, "file", nil)
	e := newTab(t, empty, 1280, 900, "")
	e.open("/")
	var st struct {
		Empty, Main bool
		Curl        string
	}
	e.eval(`({Empty: !document.getElementById("empty").hidden, Main: !document.getElementById("main").hidden, Curl: document.getElementById("curl").textContent})`, &st)
	if !st.Empty || st.Main || !strings.Contains(st.Curl, "curl -X POST "+empty.url+"/api/tokens") {
		t.Errorf("a fresh install shows empty=%v main=%v curl=%q", st.Empty, st.Main, st.Curl)
	}
	e.screenshot(out, "empty")
	e.checkClean()
	t.Logf("screenshots in %s", out)
}

// TestDashboardReadKey: with TOKENLEDGER_READ_KEY the page asks for the key,
// refuses a wrong one, then shows the data. The key lives in this tab's
// sessionStorage and goes out in the Authorization header only: it is in
// no URL the page requested (the range switch, Refresh and a CSV blob
// included), no cookie or localStorage, not in the page's DOM or any
// input once sent, and in no line the server logged at debug level; nor
// is the wrong key, which may be a typo of the right one.
func TestDashboardReadKey(t *testing.T) {
	const key, wrong = "read-key-0123456789abcdef", "wrong-key-0123456789abc"
	s := loggedBackend(t, "file", map[string]string{"TOKENLEDGER_READ_KEY": key, "TOKENLEDGER_API_KEY": "api-key-0123456789abcdef"})
	s.post(t, sample(time.Now().UTC().Add(-time.Second)))
	tb := newTab(t, s, 1280, 900, "")
	tb.run(chromedp.Navigate(s.url + "/?days=7"))
	tb.waitFor(`!document.getElementById("keyform").hidden`)
	tb.run(chromedp.SendKeys(chromedp.CSS("#readkey"), wrong), chromedpClick(`#keyformform button[type=submit]`))
	tb.waitFor(`!document.getElementById("keyerror").hidden`)
	tb.run(chromedp.SendKeys(chromedp.CSS("#readkey"), key), chromedpClick(`#keyformform button[type=submit]`))
	tb.waitFor(`!document.getElementById("main").hidden && document.querySelectorAll("#daily-chart g.day").length === 7`)
	checkMatchesAPI(t, tb.view(), s.api(t, 7), 7)
	tb.run(chromedpClick(`.range a[data-days="30"]`))
	tb.waitFor(`document.querySelectorAll("#daily-chart g.day").length === 30`)
	before := tb.countRequests("/api/tokens?action=range")
	tb.run(chromedpClick("#refresh"))
	for deadline := time.Now().Add(15 * time.Second); tb.countRequests("/api/tokens?action=range") == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Refresh sent no request")
		}
	}
	dir := t.TempDir()
	tb.allowDownloads(dir)
	tb.download(dir, `button[data-csv="users"]`)

	var where struct {
		Session, Local, URL, Cookie, DOM, Inputs string
		Resources                                []string
		Form                                     bool
	}
	tb.eval(`({Session: sessionStorage.getItem("tokenledger.readKey"), Local: JSON.stringify(localStorage), URL: location.href,
	  Cookie: document.cookie, DOM: document.documentElement.outerHTML,
	  Inputs: [...document.querySelectorAll("input")].map(i => i.value).join(" "),
	  Resources: performance.getEntries().map(e => e.name), Form: !document.getElementById("keyform").hidden})`, &where)
	if where.Session != key || where.Form {
		t.Errorf("after entering the key: sessionStorage %q, key form shown %v", where.Session, where.Form)
	}
	tb.mu.Lock()
	urls := append(append([]string{where.URL}, where.Resources...), tb.requests...)
	tb.mu.Unlock()
	for what, text := range map[string]string{
		"a requested URL": strings.Join(urls, "\n"), "a cookie": where.Cookie, "localStorage": where.Local,
		"the page's DOM": where.DOM, "an input": where.Inputs, "the server's log": s.logs.String(),
	} {
		for _, k := range []string{key, wrong} {
			if strings.Contains(text, k) {
				t.Errorf("the key %s is in %s", k, what)
			}
		}
	}
	// What the checks read must hold what they check.
	if !strings.Contains(strings.Join(urls, "\n"), "/api/tokens?action=range&days=30") || !strings.Contains(where.DOM, `id="readkey"`) {
		t.Errorf("the recorded URLs or the DOM are not the page's: %v", urls)
	}
	if logs := s.logs.String(); !strings.Contains(logs, "path=/api/tokens") || !strings.Contains(logs, "refused a request with a wrong key") {
		t.Errorf("the server's debug log does not show the page's requests and the refusal:\n%s", logs)
	}
	// The two refusals (no key, then the wrong one) are expected.
	tb.checkClean("401", "403")
}

// TestDashboardReset: with an admin key the Reset button shows; it needs
// the key and "reset" typed out, and then the store is empty.
func TestDashboardReset(t *testing.T) {
	const admin = "admin-key-0123456789abcdef"
	s := backend(t, "file", map[string]string{"TOKENLEDGER_ADMIN_KEY": admin})
	s.post(t, sample(time.Now().UTC().Add(-time.Second)))
	tb := newTab(t, s, 1280, 900, "")
	tb.open("/?days=7")
	if !tb.view().Reset {
		t.Fatal("no Reset button although the server has an admin key")
	}
	tb.run(chromedpClick("#reset"), chromedp.SendKeys(chromedp.CSS("#adminkey"), admin), chromedp.SendKeys(chromedp.CSS("#confirm"), "res"))
	var disabled bool
	tb.eval(`document.getElementById("resetgo").disabled`, &disabled)
	if !disabled {
		t.Error("Reset is enabled before the confirmation is typed out")
	}
	tb.run(chromedp.SendKeys(chromedp.CSS("#confirm"), "et"), chromedpClick("#resetgo"))
	tb.waitFor(`!document.getElementById("empty").hidden`)
	if a := s.api(t, 91); a.Stats.TotalRequests != 0 {
		t.Errorf("after Reset the API still counts %d requests", a.Stats.TotalRequests)
	}
	tb.checkClean()
}

// TestDashboardAutoRefresh: the page reloads its data on a timer, and not
// while the tab is hidden. The test shortens the page's 30 s timer to
// 300 ms and drives document.hidden, both before the page's scripts run.
func TestDashboardAutoRefresh(t *testing.T) {
	s := backend(t, "file", nil)
	s.post(t, sample(time.Now().UTC().Add(-time.Second)))
	const init = `(() => {
	  const si = window.setInterval;
	  window.setInterval = (f, ms, ...a) => si(f, ms === 30000 ? 300 : ms, ...a);
	  Object.defineProperty(Document.prototype, "hidden", {get() { return !!window.__hidden; }});
	})()`
	tb := newTab(t, s, 1280, 900, init)
	tb.open("/?days=7")
	reads := func() int { return tb.countRequests("/api/tokens?action=range") }
	start := reads()
	time.Sleep(1500 * time.Millisecond)
	if n := reads() - start; n < 2 {
		t.Fatalf("visible tab: %d reloads in 1.5 s with a 300 ms timer", n)
	}
	tb.run(chromedp.Evaluate[chromedp.Void](`window.__hidden = true; document.dispatchEvent(new Event("visibilitychange"))`))
	time.Sleep(400 * time.Millisecond) // a reload already on its way may land
	hidden := reads()
	time.Sleep(1500 * time.Millisecond)
	if n := reads() - hidden; n != 0 {
		t.Errorf("hidden tab: %d reloads in 1.5 s, want none", n)
	}
	tb.run(chromedp.Evaluate[chromedp.Void](`window.__hidden = false; document.dispatchEvent(new Event("visibilitychange"))`))
	time.Sleep(1000 * time.Millisecond)
	if n := reads() - hidden; n < 1 {
		t.Errorf("visible again: %d reloads in 1 s", n)
	}
	tb.checkClean()
}
