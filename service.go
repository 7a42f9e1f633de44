package tokenledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DefaultRetentionDays is how many days back usage is kept by default:
// day D is kept while D ≥ today − 90.
const DefaultRetentionDays = 90

// MaxRetentionDays bounds TOKENLEDGER_RETENTION_DAYS.
const MaxRetentionDays = 3650

// Config holds what a Service needs.
type Config struct {
	// Store keeps the aggregates. Required.
	Store Store
	// Now is the clock; time.Now when nil.
	Now Clock
	// RetentionDays is R in "day D is kept while D ≥ today − R";
	// DefaultRetentionDays when 0.
	RetentionDays int
	// NewID makes ids for events that come without one; UUIDv7 when nil.
	NewID func() string
	// Logger receives the per-event log lines; slog.Default() when nil.
	Logger *slog.Logger
	// Prices computes the cost of events that come without one; when nil,
	// such events are recorded as unpriced.
	Prices Pricer
	// Observer, when not nil, is told the outcome of every Log call
	// (internal/metrics counts them).
	Observer Observer
}

// Observer learns what Log did: the events stored (isNew false for a
// duplicate) and the events refused by a rule.
type Observer interface {
	Logged(events []Event, isNew []bool)
	Refused(n int)
}

// Service validates events, assigns what they lack, writes them to a Store
// and computes every report from the days the Store returns.
type Service struct {
	store     Store
	now       Clock
	retention int
	newID     func() string
	log       *slog.Logger
	prices    Pricer
	obs       Observer
	label     string
	lines     lineLimiter
}

// MaxLoggedLinesPerSecond bounds the per-event "📊 Logged X tokens for
// model Y" lines: beyond it, the events of the rest of that second are
// summed up in one line instead (at thousands of events a second, a line
// each costs more CPU than logging the event, and nobody reads them).
const MaxLoggedLinesPerSecond = 100

// lineLimiter counts the per-event lines of the current second (by the
// wall clock, not the Service's, which tests may stop).
type lineLimiter struct {
	mu      sync.Mutex
	second  int64 // Unix second of the window
	lines   int   // lines logged in it
	skipped int   // events without a line in it
	tokens  int64 // their tokens
}

// take reserves up to n lines for this second and returns how many may be
// logged; the other events' tokens are added to the window's summary. When
// a new second starts, it returns the summary of the last window that
// skipped events (skipped > 0) for the caller to log.
func (l *lineLimiter) take(now time.Time, events []Event, isNew []bool) (lines, skipped int, skippedTokens int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sec := now.Unix(); sec != l.second {
		skipped, skippedTokens = l.skipped, l.tokens
		l.second, l.lines, l.skipped, l.tokens = sec, 0, 0, 0
	}
	lines = 0
	for i := range events {
		if !isNew[i] {
			continue
		}
		if l.lines < MaxLoggedLinesPerSecond {
			l.lines++
			lines++
		} else {
			l.skipped++
			l.tokens += events[i].TotalTokens
		}
	}
	return lines, skipped, skippedTokens
}

// NewService returns a Service over cfg.Store. It returns an error when the
// configuration breaks a rule (no store, retention out of range).
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("tokenledger: a store is required")
	}
	s := &Service{store: cfg.Store, now: cfg.Now, retention: cfg.RetentionDays, newID: cfg.NewID, log: cfg.Logger, prices: cfg.Prices, obs: cfg.Observer}
	if s.now == nil {
		s.now = time.Now
	}
	if s.retention == 0 {
		s.retention = DefaultRetentionDays
	}
	if s.retention < 1 || s.retention > MaxRetentionDays {
		return nil, fmt.Errorf("tokenledger: retention must be 1 to %d days, not %d", MaxRetentionDays, s.retention)
	}
	if s.newID == nil {
		s.newID = NewEventID
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.label = "File"
	if d, ok := cfg.Store.(Describer); ok && d.Info().Database {
		s.label = "Database"
	}
	return s, nil
}

// NewEventID returns a new UUIDv7 string: unique, and ordered by time.
func NewEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does; a random
		// v4 is still unique enough to serve as an idempotency key.
		return uuid.NewString()
	}
	return id.String()
}

// Store returns the store the Service writes to.
func (s *Service) Store() Store { return s.store }

// RetentionDays returns R.
func (s *Service) RetentionDays() int { return s.retention }

// Now returns the Service's current time.
func (s *Service) Now() time.Time { return s.now() }

// Today returns the current UTC date.
func (s *Service) Today() Date { return DateOf(s.now()) }

// OldestDay returns the oldest day still kept: today − R.
func (s *Service) OldestDay() Date { return s.Today().AddDays(-s.retention) }

// LogResult is the outcome of logging a batch.
type LogResult struct {
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	IDs        []string `json:"ids"`
	Degraded   bool     `json:"degraded"`
}

// ValidateAndPrice checks events against every rule, including the clock's
// (the retention window and the future limit), fills in a missing ID (a
// UUIDv7) and a missing Timestamp (now), prices every event that came
// without a cost (see docs/api.md, Cost) and returns them as a Batch, the
// only form a Store takes. It changes the slice in place. On the first
// broken rule it returns a *ValidationError with Index set (none for an
// event the decoder read on its own, as it was sent) and no Batch.
func (s *Service) ValidateAndPrice(events []Event) (Batch, error) {
	now := s.now()
	for i := range events {
		e := &events[i]
		if err := e.Validate(); err != nil {
			if e.alone {
				return Batch{}, err
			}
			return Batch{}, atIndex(err, i)
		}
		if e.Timestamp.IsZero() && !e.zeroTimeSent {
			e.Timestamp = now
		}
		e.Timestamp = e.Timestamp.UTC()
		if err := checkWindow(e, now, s.retention); err != nil {
			return Batch{}, atIndex(err, i)
		}
		if err := price(e, s.prices); err != nil {
			return Batch{}, atIndex(err, i)
		}
	}
	for i := range events {
		if events[i].ID == "" {
			events[i].ID = s.newID()
		}
	}
	return Batch{events: events}, nil
}

// Log validates and prepares events (see ValidateAndPrice) and writes them all to
// the store. Either every event is valid and the store took them all, or
// an error is returned: a *ValidationError when an event breaks a rule
// (nothing stored), or the store's error.
func (s *Service) Log(ctx context.Context, events []Event) (LogResult, error) {
	if len(events) == 0 {
		return LogResult{}, &ValidationError{Index: -1, Msg: "there are no events to log"}
	}
	batch, err := s.ValidateAndPrice(events)
	if err != nil {
		s.Refused(len(events))
		return LogResult{}, err
	}
	return s.LogBatch(ctx, batch)
}

// LogBatch writes a batch that ValidateAndPrice made to the store, tells
// the Observer and logs its lines: Log without the rules, for a caller
// that checked its events one by one (OTLP spans are refused alone).
func (s *Service) LogBatch(ctx context.Context, batch Batch) (LogResult, error) {
	events := batch.events
	res, err := s.store.Add(ctx, batch)
	if err != nil {
		return LogResult{}, err
	}
	if len(res.New) != len(events) {
		return LogResult{}, fmt.Errorf("store answered for %d of %d events", len(res.New), len(events))
	}
	out := LogResult{Accepted: res.Accepted(), Duplicates: res.Duplicates(), IDs: make([]string, len(events)), Degraded: res.Degraded}
	if s.obs != nil {
		s.obs.Logged(events, res.New)
	}
	if s.log.Enabled(ctx, slog.LevelInfo) {
		label := s.label
		if res.Degraded {
			label = "Spool" // kept locally until the database takes them
		}
		s.logLines(ctx, label, events, res.New)
	}
	for i := range events {
		out.IDs[i] = events[i].ID
	}
	return out, nil
}

// Refused tells the Observer that n events were refused: by a rule here,
// or by the HTTP API before they were events (a body that does not
// decode counts as one).
func (s *Service) Refused(n int) {
	if s.obs != nil {
		s.obs.Refused(n)
	}
}

// logLines logs "📊 Logged X tokens for model Y (Database)" for each new
// event, up to MaxLoggedLinesPerSecond lines a second, and one summary
// line for the events of a second beyond that.
func (s *Service) logLines(ctx context.Context, label string, events []Event, isNew []bool) {
	lines, skipped, tokens := s.lines.take(s.now(), events, isNew)
	if skipped > 0 {
		s.log.LogAttrs(ctx, slog.LevelInfo, fmt.Sprintf("📊 Logged %d more events (%d tokens) in the last busy second without a line each (%s): at most %d lines a second",
			skipped, tokens, label, MaxLoggedLinesPerSecond))
	}
	for i := 0; i < len(events) && lines > 0; i++ {
		if isNew[i] {
			s.log.LogAttrs(ctx, slog.LevelInfo, fmt.Sprintf("📊 Logged %d tokens for model %s (%s)", events[i].TotalTokens, events[i].Model, label))
			lines--
		}
	}
}

// CheckDays validates the days parameter of history, all, models and users:
// 1 ≤ n ≤ R + 1.
func (s *Service) CheckDays(n int) error {
	if n < 1 || n > s.retention+1 {
		return &ValidationError{Index: -1, Field: "days", Msg: fmt.Sprintf("must be a whole number from 1 to %d", s.retention+1)}
	}
	return nil
}

// days reads the last n days ending today (n = R + 1 for the whole window).
func (s *Service) days(ctx context.Context, n int, users bool) ([]Day, Date, error) {
	today := s.Today()
	days, err := s.store.Days(ctx, DayQuery{From: today.AddDays(1 - n), To: today, Users: users})
	return days, today, err
}

// TodayUsage returns today's usage, or nil when nothing was logged today.
func (s *Service) TodayUsage(ctx context.Context) (*Day, error) {
	days, today, err := s.days(ctx, 1, false)
	if err != nil {
		return nil, err
	}
	return Find(days, today), nil
}

// DateUsage returns the usage of date, or nil when nothing is kept for it
// (including dates outside the retention window).
func (s *Service) DateUsage(ctx context.Context, date Date) (*Day, error) {
	if date < s.OldestDay() || date > s.Today() {
		return nil, nil
	}
	days, err := s.store.Days(ctx, DayQuery{From: date, To: date})
	if err != nil {
		return nil, err
	}
	return Find(days, date), nil
}

// History returns the last n days, oldest first, today last, zero-filled.
func (s *Service) History(ctx context.Context, n int) ([]Day, error) {
	sp, err := s.LastDays(n)
	if err != nil {
		return nil, err
	}
	return s.historyIn(ctx, sp)
}

// Stats summarises the retained window.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	days, _, err := s.days(ctx, s.retention+1, false)
	if err != nil {
		return Stats{}, err
	}
	return ComputeStats(days), nil
}

// AllReport is today's usage, the history of n days and the stats, all
// from one read of the store.
type AllReport struct {
	TodayUsage *Day  `json:"todayUsage"`
	History    []Day `json:"history"`
	Stats      Stats `json:"stats"`
}

// All returns today's usage, n days of history and the stats from a single
// read of the retained window.
func (s *Service) All(ctx context.Context, n int) (AllReport, error) {
	sp, err := s.LastDays(n)
	if err != nil {
		return AllReport{}, err
	}
	return s.allIn(ctx, sp)
}

// RangeReport is what a usage page shows for the last n days: today, the
// zero-filled history, the per-model and per-user totals over the range,
// and the stats of the whole retained window.
type RangeReport struct {
	TodayUsage *Day          `json:"todayUsage"`
	History    []Day         `json:"history"`
	Models     []ModelTotals `json:"models"`
	Users      []UserTotals  `json:"users"`
	Stats      Stats         `json:"stats"`
}

// Range returns the RangeReport of the last n days (see RangeIn): one
// read when n spans the window.
func (s *Service) Range(ctx context.Context, n int) (RangeReport, error) {
	sp, err := s.LastDays(n)
	if err != nil {
		return RangeReport{}, err
	}
	return s.rangeIn(ctx, sp)
}

// Models returns per-model totals over the last n days.
func (s *Service) Models(ctx context.Context, n int) ([]ModelTotals, error) {
	sp, err := s.LastDays(n)
	if err != nil {
		return nil, err
	}
	return s.modelsIn(ctx, sp)
}

// Users returns per-user totals over the last n days.
func (s *Service) Users(ctx context.Context, n int) ([]UserTotals, error) {
	sp, err := s.LastDays(n)
	if err != nil {
		return nil, err
	}
	return s.usersIn(ctx, sp)
}

// Reset deletes all usage data.
func (s *Service) Reset(ctx context.Context) error { return s.store.Reset(ctx) }

// Check runs the store's write-and-read check and returns how long it took.
func (s *Service) Check(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	err := s.store.Check(ctx)
	return time.Since(start), err
}
