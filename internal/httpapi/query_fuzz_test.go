package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/memstore"
)

// FuzzQuery sends arbitrary query strings to GET /api/tokens over a
// memstore with a week of usage. Whatever the query, the answer is 200 or
// 400 (never 500: the panic recovery would hide a crash as one), a JSON
// object, and:
//   - a 400 names one sentence in "error" and, if any, a known parameter
//     in "field";
//   - a 200 carries environment and timestamp, and a history as long as
//     the days parameter asks (7 by default).
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{
		"", "action=today", "action=date&date=2026-11-26", "action=date", "action=date&date=2026-13-01",
		"action=history&days=30", "action=history&days=0", "action=history&days=+7", "action=history&days=92",
		"action=all&days=91", "action=models&days=1", "action=users&days=7", "action=stats", "action=",
		"action=bogus", "action=today&action=today", "days=7", "action=stats&days=3", "date=2026-11-27",
		"action=history&days=%39", "action=%zz", "a=1&b=2&_=123", ";action=history", "action=history&&days=2",
		"action=history&days=9999999999999999999", "action=date&date=0000-00-00", "action=date&date=+2026-11-27",
		"action=history&since=2026-11-01&until=2026-11-20", "action=range&since=2026-08-29", "action=all&since=2026-11-27&_=1",
		"action=users&dyas=5", "action=models&until=2026-11-20", "action=date&date=2026-02-30",
	} {
		f.Add(seed)
	}
	clock := func() time.Time { return now }
	st := memstore.New(clock, 90)
	svc, err := tokenledger.NewService(tokenledger.Config{Store: st, Now: clock, RetentionDays: 90,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	var events []tokenledger.Event
	for d := range 7 {
		events = append(events, tokenledger.Event{
			ID: "e" + strconv.Itoa(d), Timestamp: now.AddDate(0, 0, -d), Model: "m" + strconv.Itoa(d%3),
			UserID: "u" + strconv.Itoa(d%2), PromptTokens: int64(10 * d), CompletionTokens: 1, TotalTokens: int64(10*d + 1),
		})
	}
	if _, err := svc.Log(context.Background(), events); err != nil {
		f.Fatal(err)
	}
	h := NewServer(Deps{Service: svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// A 400 names one of these, or the unknown parameter it refuses (cut
	// to maxFieldEcho).
	fields := map[string]bool{"": true, "action": true, "date": true, "days": true, "since": true, "until": true}

	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest("GET", "/api/tokens", nil)
		req.URL.RawQuery = raw
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("?%s: %d, body is not a JSON object: %v\n%s", raw, rec.Code, err, rec.Body)
		}
		switch rec.Code {
		case http.StatusBadRequest:
			msg, _ := body["error"].(string)
			field, _ := body["field"].(string)
			q, _ := url.ParseQuery(raw)
			_, named := q[field]
			if msg == "" || !(fields[field] || named || len(field) > maxFieldEcho) || len(body) > 2 {
				t.Fatalf("?%s: a 400 that is not {error, field}: %s", raw, rec.Body)
			}
		case http.StatusOK:
			if body["environment"] == nil || body["timestamp"] == nil {
				t.Fatalf("?%s: a 200 without environment or timestamp: %s", raw, rec.Body)
			}
			q, _ := url.ParseQuery(raw)
			want := 7
			if d := q.Get("days"); d != "" {
				want, _ = strconv.Atoi(d)
			}
			if since := q.Get("since"); since != "" {
				until := cmp.Or(q.Get("until"), string(tokenledger.DateOf(now)))
				want = tokenledger.DaysBetween(tokenledger.Date(since), tokenledger.Date(until)) + 1
			}
			if hist, ok := body["history"].([]any); ok && len(hist) != want {
				t.Fatalf("?%s: %d days of history, want %d", raw, len(hist), want)
			}
		default:
			t.Fatalf("?%s: status %d, want 200 or 400: %s", raw, rec.Code, rec.Body)
		}
	})
}
