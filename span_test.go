package tokenledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tokenledger/tokenledger"
)

func TestParseDateSaysWhatIsWrong(t *testing.T) {
	for in, want := range map[string]string{
		"2026-02-30": "date 2026-02-30 is not a real date: February 2026 has 28 days",
		"2028-02-30": "date 2028-02-30 is not a real date: February 2028 has 29 days",
		"2026-04-31": "date 2026-04-31 is not a real date: April 2026 has 30 days",
		"2026-13-01": "date 2026-13-01 is not a real date: there is no month 13",
		"2026-00-10": "date 2026-00-10 is not a real date: there is no month 0",
		"2026-11-00": "date 2026-11-00 is not a real date: there is no day 0",
		"27.11.2026": `date "27.11.2026" is not a valid YYYY-MM-DD date`,
		"2026-1-01":  `date "2026-1-01" is not a valid YYYY-MM-DD date`,
		"+2026-11-2": `date "+2026-11-2" is not a valid YYYY-MM-DD date`,
		"":           `date "" is not a valid YYYY-MM-DD date`,
	} {
		_, err := tokenledger.ParseDate(in)
		var de *tokenledger.DateError
		if !errors.As(err, &de) || err.Error() != want {
			t.Errorf("ParseDate(%q) = %v, want %q", in, err, want)
		}
	}
	for _, ok := range []string{"2026-02-28", "2028-02-29", "2026-12-31", "2026-01-01"} {
		if d, err := tokenledger.ParseDate(ok); err != nil || string(d) != ok {
			t.Errorf("ParseDate(%q) = %q, %v", ok, d, err)
		}
	}
}

// TestSpanReports: every report of a span counts exactly the days of the
// span, and reads of the last n days are the span ending today.
func TestSpanReports(t *testing.T) {
	svc, _ := newService(t, nil)
	ctx := context.Background()
	// One event a day for the last 10 days: day i back has i+1 tokens.
	var evs []tokenledger.Event
	for i := range 10 {
		evs = append(evs, tokenledger.Event{Model: "m", UserID: "ada", Timestamp: noon.AddDate(0, 0, -i), PromptTokens: int64(i + 1), TotalTokens: int64(i + 1)})
	}
	if _, err := svc.Log(ctx, evs); err != nil {
		t.Fatal(err)
	}
	today := tokenledger.DateOf(noon)
	sp := tokenledger.Span{From: today.AddDays(-6), To: today.AddDays(-4)} // 7+6+5 tokens
	const want = 18

	hist, err := svc.HistoryIn(ctx, sp)
	if err != nil || len(hist) != 3 || hist[0].Date != sp.From || hist[2].Date != sp.To || hist[0].TotalTokens+hist[1].TotalTokens+hist[2].TotalTokens != want {
		t.Errorf("HistoryIn = %+v, %v", hist, err)
	}
	models, err := svc.ModelsIn(ctx, sp)
	if err != nil || len(models) != 1 || models[0].TotalTokens != want || models[0].RequestCount != 3 {
		t.Errorf("ModelsIn = %+v, %v", models, err)
	}
	users, err := svc.UsersIn(ctx, sp)
	if err != nil || len(users) != 1 || users[0].UserID != "ada" || users[0].TotalTokens != want {
		t.Errorf("UsersIn = %+v, %v", users, err)
	}
	all, err := svc.AllIn(ctx, sp)
	if err != nil || len(all.History) != 3 || all.History[2].Date != sp.To || all.TodayUsage == nil || all.TodayUsage.TotalTokens != 1 || all.Stats.TotalTokensAllTime != 55 {
		t.Errorf("AllIn = %+v, %v", all, err)
	}
	rg, err := svc.RangeIn(ctx, sp)
	if err != nil || len(rg.History) != 3 || rg.Models[0].TotalTokens != want || rg.Users[0].TotalTokens != want ||
		rg.TodayUsage == nil || rg.TodayUsage.TotalTokens != 1 || rg.Stats.TotalTokensAllTime != 55 || rg.Stats.DaysTracked != 10 {
		t.Errorf("RangeIn = %+v, %v", rg, err)
	}

	// The last 3 days are the span ending today.
	last, err := svc.LastDays(3)
	if err != nil || last != (tokenledger.Span{From: today.AddDays(-2), To: today}) {
		t.Errorf("LastDays(3) = %+v, %v", last, err)
	}
	byDays, _ := svc.Models(ctx, 3)
	bySpan, _ := svc.ModelsIn(ctx, last)
	if len(byDays) != 1 || len(bySpan) != 1 || byDays[0] != bySpan[0] || byDays[0].TotalTokens != 6 {
		t.Errorf("Models(3) = %+v, ModelsIn(last 3 days) = %+v", byDays, bySpan)
	}
}

func TestCheckSpanRefusesWhatItCannotCover(t *testing.T) {
	svc, _ := newService(t, nil) // today 2026-11-27, 90 days kept: from 2026-08-29
	for _, tc := range []struct {
		sp          tokenledger.Span
		field, want string
	}{
		{tokenledger.Span{From: "2026-11-20", To: "2026-11-10"}, "since", "since must not be after until, and 2026-11-20 is after 2026-11-10"},
		{tokenledger.Span{From: "2026-08-28", To: "2026-11-10"}, "since", "since must be within the retention window of 90 days, 2026-08-29 or later, not 2026-08-28"},
		{tokenledger.Span{From: "2026-12-01", To: "2026-12-06"}, "until", "until must not be after today (2026-11-27, UTC), not 2026-12-06"},
		{tokenledger.Span{From: "2026-11-20", To: "2026-11-31"}, "until", "until 2026-11-31 is not a real date: November 2026 has 30 days"},
		{tokenledger.Span{From: "20.11.2026", To: "2026-11-21"}, "since", `since must be a YYYY-MM-DD date, not "20.11.2026"`},
	} {
		err := svc.CheckSpan(tc.sp)
		var ve *tokenledger.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || err.Error() != tc.want {
			t.Errorf("CheckSpan(%+v) = %v, want %q", tc.sp, err, tc.want)
		}
		if _, err := svc.HistoryIn(context.Background(), tc.sp); err == nil {
			t.Errorf("HistoryIn(%+v) took a span CheckSpan refuses", tc.sp)
		}
	}
	for _, ok := range []tokenledger.Span{{From: "2026-08-29", To: "2026-11-27"}, {From: "2026-11-27", To: "2026-11-27"}} {
		if err := svc.CheckSpan(ok); err != nil {
			t.Errorf("CheckSpan(%+v) = %v", ok, err)
		}
	}
}
