package tokenledger

import (
	"context"
	"fmt"
)

// Span is the days From to To, both included: the range a report covers
// when it is given as dates (since and until) rather than as the last n
// days.
type Span struct {
	From, To Date
}

// Days returns how many days sp covers.
func (sp Span) Days() int { return DaysBetween(sp.From, sp.To) + 1 }

// LastDays returns the span of the last n days, today included, after
// checking n as CheckDays does.
func (s *Service) LastDays(n int) (Span, error) {
	if err := s.CheckDays(n); err != nil {
		return Span{}, err
	}
	today := s.Today()
	return Span{From: today.AddDays(1 - n), To: today}, nil
}

// CheckSpan validates a span given as dates: both real YYYY-MM-DD dates,
// From not after To, and both within the retention window (OldestDay to
// today), so that a report never quietly covers less than was asked for.
// Its errors name the field since (From) or until (To).
func (s *Service) CheckSpan(sp Span) error {
	for _, f := range []struct {
		name string
		d    Date
	}{{"since", sp.From}, {"until", sp.To}} {
		if _, err := ParseDate(string(f.d)); err != nil {
			return &ValidationError{Index: -1, Field: f.name, Msg: dateMsg(err)}
		}
	}
	oldest, today := s.OldestDay(), s.Today()
	switch {
	case sp.From > sp.To:
		return &ValidationError{Index: -1, Field: "since", Msg: fmt.Sprintf("must not be after until, and %s is after %s", sp.From, sp.To)}
	case sp.From < oldest:
		return &ValidationError{Index: -1, Field: "since", Msg: fmt.Sprintf("must be within the retention window of %d days, %s or later, not %s", s.retention, oldest, sp.From)}
	case sp.To > today:
		return &ValidationError{Index: -1, Field: "until", Msg: fmt.Sprintf("must not be after today (%s, UTC), not %s", today, sp.To)}
	}
	return nil
}

// dateMsg words ParseDate's error as the rule a date field broke.
func dateMsg(err error) string {
	de, ok := err.(*DateError)
	switch {
	case !ok:
		return err.Error()
	case de.NotReal != "":
		return fmt.Sprintf("%s is not a real date: %s", de.Value, de.NotReal)
	}
	return fmt.Sprintf("must be a YYYY-MM-DD date, not %q", truncate(de.Value, 40))
}

// DateFieldError returns the *ValidationError for a date field (such as
// the query parameter date) that ParseDate refused with err.
func DateFieldError(field string, err error) *ValidationError {
	return &ValidationError{Index: -1, Field: field, Msg: dateMsg(err)}
}

// HistoryIn returns the days of sp, oldest first, zero-filled.
func (s *Service) HistoryIn(ctx context.Context, sp Span) ([]Day, error) {
	if err := s.CheckSpan(sp); err != nil {
		return nil, err
	}
	return s.historyIn(ctx, sp)
}

func (s *Service) historyIn(ctx context.Context, sp Span) ([]Day, error) {
	days, err := s.store.Days(ctx, DayQuery{From: sp.From, To: sp.To})
	if err != nil {
		return nil, err
	}
	return History(days, sp.To, sp.Days()), nil
}

// AllIn returns today's usage, the history of sp and the stats from a
// single read of the retained window.
func (s *Service) AllIn(ctx context.Context, sp Span) (AllReport, error) {
	if err := s.CheckSpan(sp); err != nil {
		return AllReport{}, err
	}
	return s.allIn(ctx, sp)
}

func (s *Service) allIn(ctx context.Context, sp Span) (AllReport, error) {
	days, today, err := s.days(ctx, s.retention+1, false)
	if err != nil {
		return AllReport{}, err
	}
	return AllReport{TodayUsage: Find(days, today), History: History(days, sp.To, sp.Days()), Stats: ComputeStats(days)}, nil
}

// ModelsIn returns per-model totals over sp.
func (s *Service) ModelsIn(ctx context.Context, sp Span) ([]ModelTotals, error) {
	if err := s.CheckSpan(sp); err != nil {
		return nil, err
	}
	return s.modelsIn(ctx, sp)
}

func (s *Service) modelsIn(ctx context.Context, sp Span) ([]ModelTotals, error) {
	days, err := s.store.Days(ctx, DayQuery{From: sp.From, To: sp.To})
	if err != nil {
		return nil, err
	}
	return Models(days), nil
}

// UsersIn returns per-user totals over sp.
func (s *Service) UsersIn(ctx context.Context, sp Span) ([]UserTotals, error) {
	if err := s.CheckSpan(sp); err != nil {
		return nil, err
	}
	return s.usersIn(ctx, sp)
}

func (s *Service) usersIn(ctx context.Context, sp Span) ([]UserTotals, error) {
	days, err := s.store.Days(ctx, DayQuery{From: sp.From, To: sp.To, Users: true})
	if err != nil {
		return nil, err
	}
	return Users(days), nil
}

// RangeIn returns the RangeReport of sp. The span is read once with its
// users; the rest of the window, which only the stats (and today's usage)
// need, is read without them, before and after the span.
func (s *Service) RangeIn(ctx context.Context, sp Span) (RangeReport, error) {
	if err := s.CheckSpan(sp); err != nil {
		return RangeReport{}, err
	}
	return s.rangeIn(ctx, sp)
}

func (s *Service) rangeIn(ctx context.Context, sp Span) (RangeReport, error) {
	days, err := s.store.Days(ctx, DayQuery{From: sp.From, To: sp.To, Users: true})
	if err != nil {
		return RangeReport{}, err
	}
	oldest, today := s.OldestDay(), s.Today()
	var window []Day
	if sp.From > oldest {
		older, err := s.store.Days(ctx, DayQuery{From: oldest, To: sp.From.AddDays(-1)})
		if err != nil {
			return RangeReport{}, err
		}
		window = older
	}
	window = append(window, days...)
	if sp.To < today {
		newer, err := s.store.Days(ctx, DayQuery{From: sp.To.AddDays(1), To: today})
		if err != nil {
			return RangeReport{}, err
		}
		window = append(window, newer...)
	}
	history := History(days, sp.To, sp.Days())
	for i := range history {
		history[i].Models = nil // the range's models list sums them once
	}
	return RangeReport{
		TodayUsage: Find(window, today),
		History:    history,
		Models:     Models(days),
		Users:      Users(days),
		Stats:      ComputeStats(window),
	}, nil
}
