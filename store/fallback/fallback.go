// Package fallback keeps a database-backed tokenledger.Store from losing
// events when the database is down. It wraps the database store (a
// decorator with Unwrap, like restic's backend wrappers): a write the
// database cannot take goes to a durable local Spool and the call succeeds
// as degraded; a replayer delivers spooled events in order, idempotently
// (they keep their ids), and drops each only after the database
// acknowledged it. A crash between delivery and that acknowledgement
// re-delivers, which the ids make harmless.
package fallback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

var (
	_ tokenledger.Store     = (*Store)(nil)
	_ tokenledger.Unwrapper = (*Store)(nil)
	_ tokenledger.Describer = (*Store)(nil)
)

// Options tune a fallback Store. Zero values are sensible defaults.
type Options struct {
	// Logger receives the lines for entering and leaving fallback and for
	// spool delivery; slog.Default() when nil.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between delivery attempts
	// while the database stays down (defaults 250 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// ReadWait bounds how long a read waits for spooled events to be
	// delivered before it is refused with the count still waiting
	// (default 2 s): a read never waits out the delivery of a long
	// outage's spool, nor a delivery another caller is running.
	ReadWait time.Duration
	// Now is this instance's clock, which stamps each spool record; the
	// records are compared with a reset only through the database's clock
	// (see since). time.Now when nil.
	Now tokenledger.Clock
}

// defaultReadWait is Options.ReadWait when zero.
const defaultReadWait = 2 * time.Second

// Store is a database store with a durable local spool in front.
type Store struct {
	primary tokenledger.Store
	spool   *Spool
	log     *slog.Logger
	minWait time.Duration
	maxWait time.Duration
	// readWait is Options.ReadWait.
	readWait time.Duration

	active atomic.Bool   // the database failed and has not answered since
	kick   chan struct{} // wakes the background replayer
	// deliver is held (one value in it) by the one delivery, reset or
	// close running: a channel, so that a caller waits for it only as
	// long as its context allows.
	deliver chan struct{}
	closed  atomic.Bool

	// refusal is why the database last refused spooled events (not an
	// outage), nil once it took them; refusalLogged (under deliver) is
	// when that was last logged.
	refusal       atomic.Pointer[string]
	refusalLogged time.Time

	now tokenledger.Clock // Options.Now
}

// New wraps primary with the spool in spoolDir (see OpenSpool). When the
// spool holds events from an earlier run, the Store starts in fallback and
// the replayer delivers them first.
func New(primary tokenledger.Store, spoolDir string, o Options) (*Store, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	sp, err := OpenSpool(spoolDir)
	if err != nil {
		return nil, err
	}
	sp.now = now
	s := &Store{primary: primary, spool: sp, log: o.Logger, minWait: o.MinBackoff, maxWait: o.MaxBackoff, kick: make(chan struct{}, 1),
		deliver: make(chan struct{}, 1), readWait: o.ReadWait, now: now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.minWait <= 0 {
		s.minWait = 250 * time.Millisecond
	}
	if s.maxWait <= 0 {
		s.maxWait = 5 * time.Second
	}
	if s.readWait <= 0 {
		s.readWait = defaultReadWait
	}
	if n := sp.Pending(); n > 0 {
		s.log.Warn(fmt.Sprintf("📦 %s from an earlier run %s in the spool %s; delivering %s to the database", count(n, "event"), plural(n, "waits", "wait"), sp.Dir(), plural(n, "it", "them")))
	}
	return s, nil
}

// Unwrap returns the database store.
func (s *Store) Unwrap() tokenledger.Store { return s.primary }

// Spool returns the local spool.
func (s *Store) Spool() *Spool { return s.spool }

// Info describes the database store.
func (s *Store) Info() tokenledger.StoreInfo {
	if d, ok := tokenledger.FindStore[tokenledger.Describer](s.primary); ok {
		return d.Info()
	}
	return tokenledger.StoreInfo{Kind: "unknown", Database: true}
}

// Status is the state of a fallback spool, for GET /api/test and /metrics.
type Status struct {
	Active        bool `json:"active"`
	PendingEvents int  `json:"pendingEvents"`
	// DeliveryError, when set, says why the database refuses the spooled
	// events (an error that is not an outage, such as a key of the wrong
	// type): they stay in the spool until the database is fixed.
	DeliveryError string `json:"deliveryError,omitempty"`
	// RejectedEvents counts spooled events the database refused for
	// themselves (each would take a day's counter past 2^62): they are
	// kept in the spool's rejected file, not counted, and no longer hold
	// up the events behind them.
	RejectedEvents int `json:"rejectedEvents,omitempty"`
}

// FallbackStatus says whether writes currently go to the spool and how
// many events wait there.
func (s *Store) FallbackStatus() Status {
	n := s.spool.Pending()
	st := Status{Active: s.active.Load() || n > 0, PendingEvents: n, RejectedEvents: s.spool.Rejected()}
	if r := s.refusal.Load(); r != nil && n > 0 {
		st.DeliveryError = *r
	}
	return st
}

// unavailable reports whether err means the database could not take the
// call (refused, timed out, 5xx), as opposed to the caller giving up or
// the input being wrong.
func unavailable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return errors.Is(err, tokenledger.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// Add writes events to the database. When the database cannot take them,
// or events are already waiting in the spool (order is kept), it appends
// them to the spool instead and returns a degraded result with every event
// counted as accepted; duplicates among them are resolved on delivery. It
// returns an error only when the caller's ctx ended, the store is closed,
// the database refused for another reason, or the spool itself failed —
// never a success for events that are not durable somewhere.
func (s *Store) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	events := batch.Events()
	if s.closed.Load() {
		return tokenledger.AddResult{}, tokenledger.ErrClosed
	}
	if !s.active.Load() && s.spool.Pending() == 0 {
		res, err := s.primary.Add(ctx, batch)
		if err == nil || !unavailable(ctx, err) {
			return res, err
		}
		s.enter(err)
	}
	if err := s.spool.Append(ctx, events); err != nil {
		err = fmt.Errorf("%w: the database is unavailable and the local spool could not keep the events: %w", tokenledger.ErrUnavailable, err)
		if why := journal.DiskProblem(err); why != "" {
			err = &tokenledger.UnavailableError{Msg: "Nothing was stored: the database is unavailable and the disk that holds the local spool is " + why + "; logging resumes by itself once either can be written", Err: err}
		}
		return tokenledger.AddResult{}, err
	}
	s.wake()
	res := tokenledger.AddResult{New: make([]bool, len(events)), Degraded: true}
	for i := range res.New {
		res.New[i] = true
	}
	return res, nil
}

// Unavailable tells the Store that the database is known to be down (for
// example, it did not answer at start-up): writes go to the spool at once,
// and the replayer delivers them when it answers.
func (s *Store) Unavailable(err error) { s.enter(err) }

// enter switches to fallback after err, logging it once.
func (s *Store) enter(err error) {
	if s.active.CompareAndSwap(false, true) {
		s.log.Warn(fmt.Sprintf("⚠️ Database unavailable, keeping events in the local spool %s until it is back", s.spool.Dir()), "error", err.Error())
	}
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Days reads from the database. While events wait in the spool it first
// tries to deliver them, for at most Options.ReadWait and within ctx; if
// some still wait it returns an error (matching ErrUnavailable) that says
// how many, rather than numbers that leave them out.
func (s *Store) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if s.closed.Load() {
		return nil, tokenledger.ErrClosed
	}
	if err := s.deliverBeforeRead(ctx); err != nil {
		return nil, err
	}
	days, err := s.primary.Days(ctx, q)
	if err != nil && unavailable(ctx, err) {
		s.enter(err)
		if n := s.spool.Pending(); n > 0 {
			return nil, s.readRefused(n, err)
		}
	}
	return days, err
}

// deliverBeforeRead delivers what waits in the spool, waiting for it at most
// s.readWait, or explains why it cannot.
func (s *Store) deliverBeforeRead(ctx context.Context) error {
	if s.spool.Pending() == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.readWait)
	defer cancel()
	delivered, err := s.Drain(wctx)
	if n := s.spool.Pending(); n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if errors.Is(err, tokenledger.ErrClosed) {
			return err
		}
		if err == nil || (wctx.Err() != nil && delivered > 0) {
			// More arrived, or the wait ran out while this read delivered:
			// not an outage. (Waiting for another caller's delivery is
			// errDelivering already; running out while the database had
			// taken nothing of this read is a database that did not answer.)
			err = errDelivering
		}
		return s.readRefused(n, err)
	}
	return nil
}

// errDelivering is why a read found events in the spool after its wait
// although the database takes them.
var errDelivering = errors.New("delivery is in progress")

// lock takes s.deliver, waiting for it no longer than ctx allows.
func (s *Store) lock(ctx context.Context) error {
	select {
	case s.deliver <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unlock() { <-s.deliver }

// readRefused is the error for a read refused because n events still wait
// in the spool; cause is why they are still there. Its sentence is shown to
// API callers.
func (s *Store) readRefused(n int, cause error) error {
	them := plural(n, "it", "them")
	msg := fmt.Sprintf("%s from the local spool %s still being delivered to the database; reports would leave %s out, so try again in a moment", count(n, "event"), plural(n, "is", "are"), them)
	if !errors.Is(cause, errDelivering) && (errors.Is(cause, tokenledger.ErrUnavailable) || errors.Is(cause, context.DeadlineExceeded)) {
		msg = fmt.Sprintf("The database is unreachable and %s %s in the local spool; reports would leave %s out, so none are given until %s delivered", count(n, "event"), plural(n, "waits", "wait"), them, plural(n, "it is", "they are"))
	} else if s.refusal.Load() != nil {
		msg = fmt.Sprintf("The database refuses the %s that %s in the local spool; reports would leave %s out, so none are given until it takes %s (the server's log and /api/test say why)", count(n, "event"), plural(n, "waits", "wait"), them, them)
	}
	return &tokenledger.UnavailableError{Msg: msg, Err: cause}
}

// Reset empties the database and the spool.
func (s *Store) Reset(ctx context.Context) error {
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	if s.closed.Load() {
		return tokenledger.ErrClosed // closed while this waited
	}
	if err := s.primary.Reset(ctx); err != nil {
		return err
	}
	if err := s.spool.clear(); err != nil {
		return err
	}
	// The refused events are gone, and their refusal with them.
	s.refusal.Store(nil)
	return nil
}

// Check checks the database; on success it also wakes the replayer.
func (s *Store) Check(ctx context.Context) error {
	if s.closed.Load() {
		return tokenledger.ErrClosed
	}
	err := s.primary.Check(ctx)
	if err == nil && s.FallbackStatus().Active {
		s.wake()
	}
	return err
}

// Close closes the spool and the database store. Events still in the spool
// stay on disk and are delivered after the next start.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.deliver <- struct{}{} // waits for a delivery in progress
	defer s.unlock()
	return errors.Join(s.spool.Close(), s.primary.Close())
}
