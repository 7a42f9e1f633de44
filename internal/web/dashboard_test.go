package web_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pageView is what the page shows, read from its DOM.
type pageView struct {
	Today           map[string]cellView
	Daily           [][]cellView
	Models          [][]cellView
	Users           [][]cellView
	Days            int
	Points          int
	Dates           []string
	Stats           map[string]string
	URL             string
	Status          string
	Reset           bool
	ScrollW, InnerW int
}

type cellView struct{ T, Title string }

const readPage = `(() => {
  const cells = tr => [...tr.cells].map(td => ({T: td.textContent.trim(), Title: td.title}));
  const rows = id => [...document.querySelectorAll("#" + id + " tbody tr")].map(cells);
  const today = {};
  for (const k of ["tokens", "requests", "users", "sessions", "cost"]) {
    const v = document.querySelector("#today-" + k + " .value");
    today[k] = v ? {T: v.textContent.trim(), Title: v.title} : null;
  }
  const stats = {};
  document.querySelectorAll("#stats > div").forEach(d => stats[d.id] = d.querySelector("dd").textContent.trim());
  const line = document.querySelector("#daily-chart polyline.costline");
  return {Today: today, Daily: rows("daily-table"), Models: rows("models-table"), Users: rows("users-table"),
    Days: document.querySelectorAll("#daily-chart g.day").length, Points: line ? Number(line.dataset.points) : -1,
    Dates: [...document.querySelectorAll("#daily-chart g.day")].map(g => g.dataset.date), Stats: stats,
    URL: location.href, Status: document.getElementById("status").textContent,
    Reset: !document.getElementById("reset").hidden,
    ScrollW: document.documentElement.scrollWidth, InnerW: window.innerWidth};
})()`

func (tb *tab) view() pageView {
	tb.t.Helper()
	var v pageView
	tb.eval(readPage, &v)
	return v
}

// count parses a number the page wrote with thousands separators.
func count(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil {
		t.Fatalf("the page shows %q where a count belongs", s)
	}
	return n
}

// exactUSD is how the page writes the API's dollar amount in full.
func exactUSD(n json.Number) string {
	s := string(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac = strings.TrimRight(frac, "0"); frac != "" {
		b.WriteString("." + frac)
	}
	if neg {
		return "-$" + b.String()
	}
	return "$" + b.String()
}

// checkCost checks a cost cell: its title is the API's amount in full and
// its text the same amount rounded to the digits it shows.
func checkCost(t testing.TB, what string, c cellView, api json.Number) {
	t.Helper()
	if c.Title != exactUSD(api) {
		t.Errorf("%s: cost title %q, want %q", what, c.Title, exactUSD(api))
	}
	txt := strings.ReplaceAll(strings.TrimPrefix(c.T, "$"), ",", "")
	shown, err := strconv.ParseFloat(txt, 64)
	want, _ := api.Float64()
	digits := 0
	if _, f, ok := strings.Cut(txt, "."); ok {
		digits = len(f)
	}
	if err != nil || math.Abs(shown-want) > 0.5*math.Pow10(-digits)+1e-12 {
		t.Errorf("%s: cost shown %q, API %s", what, c.T, api)
	}
}

func num(n json.Number) float64 { f, _ := n.Float64(); return f }

// byCost orders rows as the page does: cost, then tokens, then name.
func byCost(rows []row) []row {
	out := append([]row(nil), rows...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if num(a.CostUsd) != num(b.CostUsd) {
			return num(a.CostUsd) > num(b.CostUsd)
		}
		if a.TotalTokens != b.TotalTokens {
			return a.TotalTokens > b.TotalTokens
		}
		return a.Model+a.UserID < b.Model+b.UserID
	})
	return out
}

// checkMatchesAPI compares every number on the page with the API's
// answer for the same range.
func checkMatchesAPI(t testing.TB, v pageView, a rangeAnswer, n int) {
	t.Helper()
	if v.Days != n || v.Points != n || len(v.Daily) != n {
		t.Fatalf("range %d: chart has %d day groups and %d cost points, the table %d rows", n, v.Days, v.Points, len(v.Daily))
	}
	for i, h := range a.History {
		if v.Dates[i] != h.Date {
			t.Errorf("chart day %d is %s, API %s", i, v.Dates[i], h.Date)
		}
		r := v.Daily[n-1-i] // the table lists the newest day first
		want := []int64{h.PromptTokens - h.CacheReadTokens, h.CacheReadTokens, h.CompletionTokens, h.TotalTokens, h.RequestCount, h.UniqueUsers}
		if r[0].T != h.Date {
			t.Errorf("table row %d is %s, want %s", n-1-i, r[0].T, h.Date)
		}
		for j, w := range want {
			if got := count(t, r[j+1].T); got != w {
				t.Errorf("%s column %d: page %d, API %d", h.Date, j+1, got, w)
			}
		}
		checkCost(t, h.Date, r[7], h.CostUsd)
	}
	td := a.History[n-1]
	for k, w := range map[string]int64{"tokens": td.TotalTokens, "requests": td.RequestCount, "users": td.UniqueUsers, "sessions": td.UniqueSessions} {
		if got := count(t, v.Today[k].T); got != w {
			t.Errorf("today's %s: page %d, API %d", k, got, w)
		}
	}
	checkCost(t, "today", v.Today["cost"], td.CostUsd)

	models := byCost(a.Models)
	if len(v.Models) != len(models) {
		t.Fatalf("models table has %d rows, API %d", len(v.Models), len(models))
	}
	var total float64
	for _, m := range models {
		total += num(m.CostUsd)
	}
	for i, m := range models {
		r := v.Models[i]
		if r[0].T != m.Model || count(t, r[1].T) != m.RequestCount || count(t, r[2].T) != m.TotalTokens {
			t.Errorf("model row %d: page %v, API %+v", i, r, m)
		}
		checkCost(t, m.Model, r[3], m.CostUsd)
		if want := fmt.Sprintf("%.1f %%", 100*num(m.CostUsd)/total); total > 0 && r[4].T != want {
			t.Errorf("%s share %q, want %q", m.Model, r[4].T, want)
		}
		if flagged := strings.Contains(r[5].T, "unpriced"); flagged != (m.Pricing.Unpriced > 0) {
			t.Errorf("%s unpriced flag %q, API %d unpriced", m.Model, r[5].T, m.Pricing.Unpriced)
		}
	}
	users := byCost(a.Users)
	if want := min(50, len(users)); len(v.Users) != want {
		t.Fatalf("users table has %d rows, want %d", len(v.Users), want)
	}
	for i, r := range v.Users {
		u := users[i]
		if r[0].T != u.UserID || count(t, r[1].T) != u.RequestCount || count(t, r[2].T) != u.TotalTokens {
			t.Errorf("user row %d: page %v, API %+v", i, r, u)
		}
		checkCost(t, u.UserID, r[3], u.CostUsd)
	}
	s := a.Stats
	for k, w := range map[string]int64{"stat-total-tokens": s.TotalTokensAllTime, "stat-total-requests": s.TotalRequests,
		"stat-avg": s.AvgTokensPerRequest, "stat-days": int64(s.DaysTracked)} {
		if got := count(t, v.Stats[k]); got != w {
			t.Errorf("%s: page %d, API %d", k, got, w)
		}
	}
	if s.MostActiveDate == nil || v.Stats["stat-most-active"] != *s.MostActiveDate {
		t.Errorf("most active day: page %q, API %v", v.Stats["stat-most-active"], s.MostActiveDate)
	}
}

// checkCSV compares a downloaded CSV with the API's rows.
func checkCSV(t testing.TB, kind string, body []byte, a rangeAnswer) {
	t.Helper()
	if !bytes.HasSuffix(body, []byte("\r\n")) || bytes.Count(body, []byte("\r\n")) < 2 {
		t.Errorf("%s CSV does not end its records with CRLF: %q", kind, body[:min(len(body), 200)])
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("%s CSV does not parse: %v", kind, err)
	}
	var want [][]string
	cost := func(n json.Number) string { return strings.TrimPrefix(exactUSD(n), "$") }
	plain := func(s string) string { return strings.ReplaceAll(s, ",", "") }
	switch kind {
	case "daily":
		for _, h := range a.History {
			want = append(want, []string{h.Date, fmt.Sprint(h.PromptTokens), fmt.Sprint(h.CacheReadTokens), fmt.Sprint(h.CacheWriteTokens),
				fmt.Sprint(h.CompletionTokens), fmt.Sprint(h.ReasoningTokens), fmt.Sprint(h.TotalTokens), fmt.Sprint(h.RequestCount),
				fmt.Sprint(h.UniqueUsers), fmt.Sprint(h.UniqueSessions), plain(cost(h.CostUsd))})
		}
	case "models":
		for _, m := range byCost(a.Models) {
			want = append(want, []string{m.Model, fmt.Sprint(m.RequestCount), fmt.Sprint(m.PromptTokens), fmt.Sprint(m.CompletionTokens),
				fmt.Sprint(m.TotalTokens), plain(cost(m.CostUsd)), fmt.Sprint(m.Pricing.Client), fmt.Sprint(m.Pricing.Table), fmt.Sprint(m.Pricing.Unpriced)})
		}
	case "users":
		for _, u := range byCost(a.Users) {
			want = append(want, []string{u.UserID, fmt.Sprint(u.RequestCount), fmt.Sprint(u.PromptTokens), fmt.Sprint(u.CompletionTokens),
				fmt.Sprint(u.TotalTokens), plain(cost(u.CostUsd))})
		}
	}
	if len(recs) != len(want)+1 {
		t.Fatalf("%s CSV has %d records, want a header and %d rows", kind, len(recs), len(want))
	}
	if len(recs[0]) != len(want[0]) || recs[0][0] == "" {
		t.Errorf("%s CSV header %v", kind, recs[0])
	}
	for i, w := range want {
		if strings.Join(recs[i+1], "\x00") != strings.Join(w, "\x00") {
			t.Errorf("%s CSV row %d = %q, want %q", kind, i+1, recs[i+1], w)
		}
	}
}

// TestDashboard opens the page in headless Chromium on each backend with
// known data and checks it against the API: the numbers, one chart point
// per day, the range in the URL, the CSV downloads, nothing from another
// origin and no console error.
func TestDashboard(t *testing.T) {
	for _, kind := range []string{"file", "redis", "vercel"} {
		t.Run(kind, func(t *testing.T) {
			s := backend(t, kind, nil)
			s.post(t, sample(time.Now().UTC().Add(-time.Second)))
			tb := newTab(t, s, 1280, 900, "")
			tb.open("/?days=7")
			checkMatchesAPI(t, tb.view(), s.api(t, 7), 7)

			tb.run(chromedpClick(`.range a[data-days="30"]`))
			tb.waitFor(`document.querySelectorAll("#daily-chart g.day").length === 30`)
			v := tb.view()
			if !strings.HasSuffix(v.URL, "/?days=30") {
				t.Errorf("after picking 30 days the URL is %s", v.URL)
			}
			a30 := s.api(t, 30)
			checkMatchesAPI(t, v, a30, 30)
			if a7 := s.api(t, 7); a7.Models[0].RequestCount == a30.Models[0].RequestCount {
				t.Errorf("the sample gives 7 and 30 days the same numbers; the range check proves nothing")
			}
			wantKind := map[string]string{"file": "Local file", "redis": "Redis", "vercel": "Vercel KV / Upstash REST"}[kind]
			if !strings.Contains(v.Status, "Storage: "+wantKind) || !strings.Contains(v.Status, "Version: ") {
				t.Errorf("status strip = %q", v.Status)
			}
			if kind == "vercel" && !strings.Contains(v.Status, "Environment: Vercel (preview, fra1)") {
				t.Errorf("status strip on Vercel = %q", v.Status)
			}
			if v.Reset {
				t.Error("the Reset button shows without an admin key")
			}

			dir := t.TempDir()
			tb.allowDownloads(dir)
			for _, csvKind := range []string{"daily", "models", "users"} {
				name, body := tb.download(dir, `button[data-csv="`+csvKind+`"]`)
				if !strings.HasPrefix(name, "tokenledger-"+csvKind+"-") || !strings.HasSuffix(name, ".csv") {
					t.Errorf("CSV file name %q", name)
				}
				checkCSV(t, csvKind, body, a30)
			}
			tb.checkClean()
		})
	}
}
