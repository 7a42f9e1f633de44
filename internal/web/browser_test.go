package web_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// tab is one headless Chromium tab on a site. It records every request
// the page makes and every console error, exception and browser error
// log entry, so that a test can say none went elsewhere or went wrong.
type tab struct {
	t      testing.TB
	ctx    context.Context
	origin string

	mu        sync.Mutex
	requests  []string
	problems  []string
	completed []string // names of the finished downloads, in order
	started   bool     // the browser runs (the first run has no timeout)
}

// newTab starts Chromium (one process per tab: tests stay independent)
// with the window w×h, all host names but loopback unresolvable, and no
// background traffic. init, when not empty, runs before the page's own
// scripts on every load.
func newTab(t testing.TB, s *site, w, h int, init string) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(w, h),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	tb := &tab{t: t, origin: s.url}
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(tb.record))
	t.Cleanup(func() { cancelC(); cancelA() })
	tb.ctx = ctx
	tb.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, log.Enable, cdp.Empty{}); err != nil {
			return err
		}
		if init != "" {
			_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: init})
			return err
		}
		return nil
	}))
	names := map[string]string{}
	if err := chromedp.ListenBrowser(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch ev := ev.(type) {
		case *browser.EventDownloadWillBegin:
			names[ev.GUID] = ev.SuggestedFilename
		case *browser.EventDownloadProgress:
			if ev.State == browser.DownloadProgressStateCompleted {
				tb.completed = append(tb.completed, names[ev.GUID])
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// record keeps the requests and the problems the tab reports.
func (tb *tab) record(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		tb.requests = append(tb.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			tb.problems = append(tb.problems, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		msg := ev.ExceptionDetails.Text
		if ex := ev.ExceptionDetails.Exception; ex != nil {
			msg += " " + ex.Description
		}
		tb.problems = append(tb.problems, "exception: "+msg)
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			tb.problems = append(tb.problems, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
		}
	}
}

// run runs steps, each call bounded by 30 s once the browser is up (the
// first call starts it, and a timeout on it would stop the browser).
func (tb *tab) run(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx := tb.ctx
	if tb.started {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(tb.ctx, 30*time.Second)
		defer cancel()
	}
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatal(err)
	}
	tb.started = true
}

// open loads path and waits for the page's first complete render.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.run(chromedp.Navigate(tb.origin + path))
	tb.waitFor(`performance.getEntriesByName("tokenledger-rendered").length > 0`)
}

// waitFor polls a JavaScript condition until it holds (or fails the test
// after 15 s).
func (tb *tab) waitFor(cond string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		tb.t.Fatalf("waiting for %s: %v (problems so far: %v)", cond, err, tb.problemList())
	}
}

// eval runs a JavaScript expression and decodes its value into out.
func (tb *tab) eval(js string, out any) {
	tb.t.Helper()
	raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](js))
	if err != nil {
		tb.t.Fatalf("evaluating %.60s…: %v", js, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.t.Fatalf("evaluating %.60s…: %v", js, err)
	}
}

func (tb *tab) problemList() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.problems...)
}

// checkClean fails the test for any console error or exception, and for
// any request that left the origin. allowed lists problems expected in
// this test (matched as substrings).
func (tb *tab) checkClean(allowed ...string) {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.requests) == 0 {
		tb.t.Error("the tab saw no request at all: the recorder is not working")
	}
	for _, u := range tb.requests {
		if !strings.HasPrefix(u, tb.origin+"/") && !strings.HasPrefix(u, "blob:"+tb.origin+"/") {
			tb.t.Errorf("the page requested %s, outside its origin %s", u, tb.origin)
		}
	}
next:
	for _, p := range tb.problems {
		for _, a := range allowed {
			if strings.Contains(p, a) {
				continue next
			}
		}
		tb.t.Errorf("browser reported: %s", p)
	}
}

// countRequests counts the requests so far whose URL contains s.
func (tb *tab) countRequests(s string) int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	n := 0
	for _, u := range tb.requests {
		if strings.Contains(u, s) {
			n++
		}
	}
	return n
}

// allowDownloads sends downloads to dir under their suggested names.
func (tb *tab) allowDownloads(dir string) {
	tb.t.Helper()
	if _, err := chromedp.CallBrowser(tb.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: new(true)}); err != nil {
		tb.t.Fatal(err)
	}
}

// download clicks sel and returns the downloaded file's name and bytes.
func (tb *tab) download(dir, sel string) (string, []byte) {
	tb.t.Helper()
	tb.mu.Lock()
	before := len(tb.completed)
	tb.mu.Unlock()
	tb.run(chromedp.Click(chromedp.CSS(sel)))
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		tb.mu.Lock()
		var name string
		if len(tb.completed) > before {
			name = tb.completed[before]
		}
		tb.mu.Unlock()
		if name != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				tb.t.Fatal(err)
			}
			return name, b
		}
	}
	tb.t.Fatalf("clicking %s downloaded nothing within 15 s", sel)
	return "", nil
}

// chromedpClick clicks the first element matching a CSS selector.
func chromedpClick(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel))
}

// screenshot saves the whole page as name.png in dir.
func (tb *tab) screenshot(dir, name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// dark switches prefers-color-scheme to dark.
func (tb *tab) dark() {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		tb.t.Fatal(err)
	}
}

// mobile sets a 375 px wide phone viewport.
func (tb *tab) mobile() {
	tb.run(chromedp.EmulateViewport(375, 800, chromedp.EmulateScale(2), chromedp.EmulateMobile))
}
