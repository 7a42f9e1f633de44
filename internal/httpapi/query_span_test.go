package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestQuerySinceUntil: since and until choose the days of history, all,
// models, users and range, and each answer covers exactly them; the
// cache buster "_" is taken and changes nothing.
func TestQuerySinceUntil(t *testing.T) {
	f := newFixture(t)
	// One event a day from 2026-11-18 to today (2026-11-27): day d has d tokens.
	var evs []string
	for d := 18; d <= 27; d++ {
		evs = append(evs, fmt.Sprintf(`{"id":"e%d","timestamp":"2026-11-%dT10:00:00Z","model":"m","userId":"ada","promptTokens":%d}`, d, d, d))
	}
	f.post("["+strings.Join(evs, ",")+"]").wantStatus(t, http.StatusOK)
	const span = "since=2026-11-20&until=2026-11-22" // 20+21+22 tokens
	const want = 63

	h := f.get("?action=history&" + span)
	h.wantStatus(t, http.StatusOK)
	hist, _ := h.body["history"].([]any)
	if len(hist) != 3 || day(hist[0])["date"] != "2026-11-20" || day(hist[2])["date"] != "2026-11-22" || sumTokens(hist) != want {
		t.Errorf("history %s: %s", span, h.raw)
	}
	for _, action := range []string{"models", "users"} {
		a := f.get("?action=" + action + "&" + span)
		a.wantStatus(t, http.StatusOK)
		rows, _ := a.body[action].([]any)
		if len(rows) != 1 || day(rows[0])["totalTokens"] != float64(want) || day(rows[0])["requestCount"] != float64(3) {
			t.Errorf("%s %s: %s", action, span, a.raw)
		}
	}
	for _, action := range []string{"all", "range"} {
		a := f.get("?action=" + action + "&" + span)
		a.wantStatus(t, http.StatusOK)
		hist, _ := a.body["history"].([]any)
		stats := day(a.body["stats"])
		if len(hist) != 3 || sumTokens(hist) != want || day(a.body["todayUsage"])["totalTokens"] != float64(27) || stats["totalTokensAllTime"] != float64(225) {
			t.Errorf("%s %s: %s", action, span, a.raw)
		}
	}
	// since alone runs to today.
	a := f.get("?action=history&since=2026-11-25")
	if hist, _ := a.body["history"].([]any); len(hist) != 3 || day(hist[2])["date"] != "2026-11-27" || sumTokens(hist) != 25+26+27 {
		t.Errorf("since alone: %s", a.raw)
	}
	// The cache buster is taken; days keeps its default of 7.
	a = f.get("?action=history&_=1764240000000")
	if hist, _ := a.body["history"].([]any); a.status != http.StatusOK || len(hist) != 7 {
		t.Errorf("with _: %s", a.raw)
	}
}

func day(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func sumTokens(days []any) float64 {
	var n float64
	for _, d := range days {
		n += day(d)["totalTokens"].(float64)
	}
	return n
}
