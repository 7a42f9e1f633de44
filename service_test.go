package tokenledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

var noon = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newService(t *testing.T, logs *bytes.Buffer) (*tokenledger.Service, *memstore.Store) {
	t.Helper()
	st := memstore.New(nil, 0)
	var h slog.Handler = slog.DiscardHandler
	if logs != nil {
		h = slog.NewTextHandler(logs, nil)
	}
	svc, err := tokenledger.NewService(tokenledger.Config{Store: st, Now: func() time.Time { return noon }, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st
}

func TestLogAssignsIDsAndTimestampsBeforeWriting(t *testing.T) {
	var logs bytes.Buffer
	svc, st := newService(t, &logs)
	events := []tokenledger.Event{{Model: "gpt-4o", PromptTokens: 3, TotalTokens: 3}, {ID: "mine", Model: "gpt-4o", TotalTokens: 4}}
	res, err := svc.Log(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	uuidv7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuidv7.MatchString(res.IDs[0]) || res.IDs[1] != "mine" {
		t.Errorf("ids = %v, want a UUIDv7 and \"mine\"", res.IDs)
	}
	if res.Accepted != 2 || res.Duplicates != 0 || res.Degraded {
		t.Errorf("result = %+v", res)
	}
	if !events[0].Timestamp.Equal(noon) {
		t.Errorf("missing timestamp became %v, want now (%v)", events[0].Timestamp, noon)
	}
	// The assigned id makes a retry of the same prepared events idempotent.
	res, err = svc.Log(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || res.Duplicates != 2 {
		t.Errorf("retry: %+v, want 2 duplicates", res)
	}
	if st.Events() != 2 {
		t.Errorf("store holds %d events, want 2", st.Events())
	}
	if got := strings.Count(logs.String(), "📊 Logged 3 tokens for model gpt-4o (File)"); got != 1 {
		t.Errorf("log line for the first event appears %d times, want 1:\n%s", got, logs.String())
	}
}

func TestLogRejectsWholeBatch(t *testing.T) {
	svc, st := newService(t, nil)
	events := []tokenledger.Event{
		{Model: "ok", TotalTokens: 1},
		{Model: "late", TotalTokens: 1, Timestamp: noon.Add(10 * time.Minute)},
	}
	_, err := svc.Log(context.Background(), events)
	var ve *tokenledger.ValidationError
	if !errors.As(err, &ve) || ve.Index != 1 || ve.Field != "timestamp" {
		t.Fatalf("err = %v, want a timestamp error at index 1", err)
	}
	if st.Events() != 0 {
		t.Errorf("a rejected batch stored %d events", st.Events())
	}
	if _, err := svc.Log(context.Background(), nil); !errors.Is(err, tokenledger.ErrInvalid) {
		t.Errorf("empty batch: err = %v, want ErrInvalid", err)
	}
}

func TestNewServiceValidates(t *testing.T) {
	if _, err := tokenledger.NewService(tokenledger.Config{}); err == nil {
		t.Error("no store accepted")
	}
	for _, r := range []int{-1, tokenledger.MaxRetentionDays + 1} {
		if _, err := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), RetentionDays: r}); err == nil {
			t.Errorf("retention %d accepted", r)
		}
	}
}

func TestReports(t *testing.T) {
	svc, _ := newService(t, nil)
	ctx := context.Background()
	at := func(daysAgo int) time.Time { return noon.AddDate(0, 0, -daysAgo) }
	events := []tokenledger.Event{
		{Model: "a", UserID: "u1", SessionID: "s1", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, Timestamp: at(0), Cost: 5},
		{Model: "b", UserID: "u2", SessionID: "s1", PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2, Timestamp: at(0)},
		{Model: "a", UserID: "u1", SessionID: "s2", TotalTokens: 17, Timestamp: at(2)},
		{Model: "c", TotalTokens: 100, Timestamp: at(90)},
	}
	if _, err := svc.Log(ctx, events); err != nil {
		t.Fatal(err)
	}
	today, err := svc.TodayUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if today == nil || today.TotalTokens != 17 || today.UniqueUsers != 2 || today.UniqueSessions != 1 || len(today.Models) != 2 {
		t.Errorf("today = %+v", today)
	}
	hist, err := svc.History(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 7 || hist[6].Date != "2026-11-27" || hist[0].Date != "2026-11-21" || hist[4].TotalTokens != 17 || hist[5].RequestCount != 0 {
		t.Errorf("history = %+v", hist)
	}
	b, _ := json.Marshal(hist[5])
	if want := `{"date":"2026-11-26","totalTokens":0,"completionTokens":0,"promptTokens":0,"requestCount":0,"uniqueUsers":0,"uniqueSessions":0,"cacheReadTokens":0,"cacheWriteTokens":0,"reasoningTokens":0,"costUsd":0,"pricing":{"client":0,"table":0,"unpriced":0},"models":{}}`; string(b) != want {
		t.Errorf("zero-filled day JSON:\n got  %s\n want %s", b, want)
	}
	stats, err := svc.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(stats)
	if want := `{"totalTokensAllTime":134,"totalRequests":4,"avgTokensPerRequest":34,"mostActiveDate":"2026-08-29","daysTracked":3,"totalCostUsd":0.000000005,"pricing":{"client":1,"table":0,"unpriced":3},"firstDate":"2026-08-29","lastDate":"2026-11-27","topModel":"c"}`; string(b) != want {
		t.Errorf("stats:\n got  %s\n want %s", b, want)
	}
	if d, err := svc.DateUsage(ctx, "2026-11-25"); err != nil || d == nil || d.TotalTokens != 17 {
		t.Errorf("DateUsage(2026-11-25) = %+v, %v", d, err)
	}
	if d, err := svc.DateUsage(ctx, "2026-11-24"); err != nil || d != nil {
		t.Errorf("DateUsage of an empty day = %+v, %v; want nil", d, err)
	}
	users, err := svc.Users(ctx, 91)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].UserID != "u1" || users[0].TotalTokens != 32 || users[0].RequestCount != 2 {
		t.Errorf("users = %+v", users)
	}
	// Range: models and users over the range only, stats over the window,
	// the same whether the window is read in one part or two.
	for _, n := range []int{3, 91} {
		rg, err := svc.Range(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		wantModels, wantUsers := 2, 2
		if n == 91 {
			wantModels = 3
		}
		if len(rg.History) != n || len(rg.Models) != wantModels || len(rg.Users) != wantUsers || rg.TodayUsage == nil || rg.TodayUsage.TotalTokens != 17 {
			t.Errorf("Range(%d) = history %d, models %+v, users %+v, today %+v", n, len(rg.History), rg.Models, rg.Users, rg.TodayUsage)
		}
		if !reflect.DeepEqual(rg.Stats, stats) {
			t.Errorf("Range(%d).Stats = %+v, want the window's %+v", n, rg.Stats, stats)
		}
		if b, _ := json.Marshal(rg.History[n-1]); strings.Contains(string(b), `"models"`) {
			t.Errorf("Range(%d) history day carries its models: %s", n, b)
		}
		if len(rg.TodayUsage.Models) == 0 {
			t.Errorf("Range(%d) todayUsage lost its models", n)
		}
		a := rg.Models[len(rg.Models)-2]
		if a.Model != "a" || a.TotalTokens != 32 || rg.Users[0].UserID != "u1" || rg.Users[0].RequestCount != 2 {
			t.Errorf("Range(%d) model a = %+v, users[0] = %+v", n, a, rg.Users[0])
		}
	}
	if _, err := svc.Range(ctx, 92); !errors.Is(err, tokenledger.ErrInvalid) {
		t.Errorf("Range(92): err = %v, want ErrInvalid", err)
	}
	for _, n := range []int{0, -1, 92} {
		if _, err := svc.History(ctx, n); !errors.Is(err, tokenledger.ErrInvalid) {
			t.Errorf("History(%d): err = %v, want ErrInvalid", n, err)
		}
	}
}

func TestComputeStatsEdges(t *testing.T) {
	empty := tokenledger.ComputeStats(nil)
	b, _ := json.Marshal(empty)
	if want := `{"totalTokensAllTime":0,"totalRequests":0,"avgTokensPerRequest":0,"mostActiveDate":null,"daysTracked":0,"totalCostUsd":0,"pricing":{"client":0,"table":0,"unpriced":0},"firstDate":null,"lastDate":null,"topModel":null}`; string(b) != want {
		t.Errorf("empty stats:\n got  %s\n want %s", b, want)
	}
	days := []tokenledger.Day{
		{Date: "2026-11-20", TotalTokens: 50, RequestCount: 2},
		{Date: "2026-11-22", TotalTokens: 50, RequestCount: 2},
		{Date: "2026-11-21", TotalTokens: 49, RequestCount: 1},
		{Date: "2026-11-23"}, // no requests: not tracked
	}
	s := tokenledger.ComputeStats(days)
	if s.MostActiveDate == nil || *s.MostActiveDate != "2026-11-22" {
		t.Errorf("tie on totalTokens: mostActiveDate = %v, want the later date 2026-11-22", s.MostActiveDate)
	}
	if s.DaysTracked != 3 || s.AvgTokensPerRequest != 30 { // 149/5 = 29.8 → 30
		t.Errorf("daysTracked %d avg %d, want 3 and 30", s.DaysTracked, s.AvgTokensPerRequest)
	}
	// Half rounds up: 5 tokens over 2 requests = 2.5 → 3.
	if s := tokenledger.ComputeStats([]tokenledger.Day{{Date: "2026-11-20", TotalTokens: 5, RequestCount: 2}}); s.AvgTokensPerRequest != 3 {
		t.Errorf("avg of 2.5 = %d, want 3", s.AvgTokensPerRequest)
	}
}

func TestDates(t *testing.T) {
	if d := tokenledger.Date("2026-03-01").AddDays(-1); d != "2026-02-28" {
		t.Errorf("AddDays = %s", d)
	}
	if n := tokenledger.DaysBetween("2026-08-29", "2026-11-27"); n != 90 {
		t.Errorf("DaysBetween = %d, want 90", n)
	}
	for _, bad := range []string{"", "2026-2-01", "2026-02-30", "20261127", "2026-11-27T00:00:00Z"} {
		if _, err := tokenledger.ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) accepted", bad)
		}
	}
}

func TestLoggedLinesAreLimited(t *testing.T) {
	var logs bytes.Buffer
	clock := noon
	svc, err := tokenledger.NewService(tokenledger.Config{Store: memstore.New(nil, 0), Now: func() time.Time { return clock },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	events := make([]tokenledger.Event, 300)
	for i := range events {
		events[i] = tokenledger.Event{Model: "gpt-4o", PromptTokens: 2, CompletionTokens: 1, TotalTokens: 3}
	}
	if _, err := svc.Log(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), "📊 Logged 3 tokens for model gpt-4o (File)"); got != tokenledger.MaxLoggedLinesPerSecond {
		t.Fatalf("%d per-event lines, want %d", got, tokenledger.MaxLoggedLinesPerSecond)
	}
	clock = clock.Add(999 * time.Millisecond) // the same second: still quiet
	if _, err := svc.Log(context.Background(), []tokenledger.Event{{Model: "gpt-4o", TotalTokens: 3}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "more events") || strings.Count(logs.String(), "📊 Logged 3 tokens") != tokenledger.MaxLoggedLinesPerSecond {
		t.Fatalf("within the same second:\n%s", logs.String()[len(logs.String())-400:])
	}
	clock = clock.Add(time.Millisecond) // the next second
	if _, err := svc.Log(context.Background(), []tokenledger.Event{{Model: "gpt-4o", TotalTokens: 3}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "📊 Logged 201 more events (603 tokens) in the last busy second without a line each (File): at most 100 lines a second") ||
		strings.Count(logs.String(), "📊 Logged 3 tokens") != tokenledger.MaxLoggedLinesPerSecond+1 {
		t.Fatalf("after a second:\n%s", logs.String()[len(logs.String())-400:])
	}
}

// spooling answers every Add as kept in a fallback spool.
type spooling struct{ *memstore.Store }

func (s spooling) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	evs := batch.Events()
	res, err := s.Store.Add(ctx, storetest.Batch(evs))
	res.Degraded = true
	return res, err
}

func TestLogLineSaysWhenEventsWereSpooled(t *testing.T) {
	var logs bytes.Buffer
	svc, err := tokenledger.NewService(tokenledger.Config{Store: spooling{memstore.New(nil, 0)}, Now: func() time.Time { return noon },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Log(context.Background(), []tokenledger.Event{{Model: "m", TotalTokens: 7}})
	if err != nil || !res.Degraded {
		t.Fatalf("Log = %+v, %v", res, err)
	}
	if !strings.Contains(logs.String(), "📊 Logged 7 tokens for model m (Spool)") {
		t.Errorf("log:\n%s", logs.String())
	}
}
