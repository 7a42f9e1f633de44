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
	"path/filepath"
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

// deliverBatch is how many spooled events one database call carries.
const deliverBatch = 1000

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

// refusalLogEvery bounds how often a lasting refusal is logged again
// (serverless instances try to deliver at the start of every request).
const refusalLogEvery = time.Minute

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

// refused records and logs that the database refused spooled events with
// err, which is not an outage: delivery stops at those events (they keep
// their place; later events wait behind them) and is retried with backoff,
// so nothing is dropped and an operator can fix the database. Called with
// s.deliver held.
func (s *Store) refused(err error) {
	msg := err.Error()
	prev := s.refusal.Swap(&msg)
	if prev != nil && *prev == msg && time.Since(s.refusalLogged) < refusalLogEvery {
		return
	}
	s.refusalLogged = time.Now()
	n := s.spool.Pending()
	s.log.Error(fmt.Sprintf("📦 The database refused %s; %s in the spool and delivery is retried until the database takes %s (see docs/operations.md, \"Delivery refused\")",
		count(n, "spooled event"), plural(n, "it stays", "they stay"), plural(n, "it", "them")),
		"error", msg)
}

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

// Drain delivers spooled events to the database in order until the spool
// is empty, ctx ends or the database fails, and returns how many it took
// out of the spool: delivered, set aside (deliverEach) or dropped as
// spooled before a reset of the database (since). When the spool is empty and the database answered, fallback
// ends. Only one Drain runs at a time; a second waits for the first, as
// long as its ctx allows.
func (s *Store) Drain(ctx context.Context) (int, error) {
	if err := s.lock(ctx); err != nil {
		// Another caller's delivery held the spool for all of ctx.
		return 0, fmt.Errorf("%w: %w", errDelivering, err)
	}
	defer s.unlock()
	if s.closed.Load() {
		return 0, tokenledger.ErrClosed // Close waits for this lock, then closes the database
	}
	delivered, fresh, dropped := 0, 0, 0
	rejectedBefore := s.spool.Rejected() // those set aside meanwhile are not delivered
	var cut resetCut                     // when the database was last reset; read once
	for {
		if err := ctx.Err(); err != nil {
			return delivered, err
		}
		recs, pos, n, err := s.spool.next(deliverBatch)
		if err != nil {
			s.log.Error("📦 Cannot read the spool; delivery stopped", "error", err.Error())
			return delivered, err
		}
		if n == 0 {
			break
		}
		if delivered == 0 {
			if cut, err = s.lastReset(ctx); err != nil {
				s.failed(ctx, err)
				return delivered, err
			}
		}
		evs, gone := since(recs, cut)
		dropped += gone
		var res tokenledger.AddResult
		if evs.Len() > 0 {
			res, err = s.primary.Add(ctx, evs)
		}
		if overflow := (*tokenledger.CounterOverflowError)(nil); errors.As(err, &overflow) {
			res, err = s.deliverEach(ctx, evs)
		}
		if err != nil {
			s.failed(ctx, err)
			return delivered, err
		}
		// Said only now that the database took a batch: at the start of
		// an attempt it would also be said while the database is still
		// down, every time the replayer tries.
		if delivered == 0 && s.active.Load() {
			s.log.Info(fmt.Sprintf("✅ Database reachable again; delivering %s", count(s.spool.Pending(), "spooled event")))
		}
		if s.refusal.Swap(nil) != nil {
			s.log.Info("📦 The database takes the spooled events again; delivery resumed")
		}
		if err := s.spool.ack(pos, n); err != nil {
			// The events are in the database; they will be delivered again
			// after a restart and counted once thanks to their ids.
			s.log.Error("📦 Delivered events but could not move the spool cursor", "error", err.Error())
			return delivered, err
		}
		delivered += n
		fresh += res.Accepted()
	}
	if dropped > 0 {
		s.log.Warn(fmt.Sprintf("📦 Dropped %s appended before the database was reset at %s (by this or another instance): the reset wiped everything logged before it", count(dropped, "spooled event"), cut.reset.UTC().Format(time.RFC3339Nano)))
	}
	if sent := delivered - dropped - (s.spool.Rejected() - rejectedBefore); sent > 0 {
		s.log.Info(fmt.Sprintf("📦 Spool drained: delivered %s to the database (%d new, %d already there)", count(sent, "event"), fresh, sent-fresh))
	}
	if s.active.Load() {
		if delivered == 0 {
			// Nothing to deliver: make sure the database answers before
			// leaving fallback.
			if err := s.primary.Check(ctx); err != nil {
				return 0, err
			}
		}
		if s.active.CompareAndSwap(true, false) {
			s.log.Info("✅ Database available again; fallback ended")
		}
	}
	return delivered, nil
}

// failed records why a delivery attempt failed: an outage enters (or
// stays in) fallback; anything else, unless the caller gave up, is a
// refusal. Called with s.deliver held.
func (s *Store) failed(ctx context.Context, err error) {
	if unavailable(ctx, err) {
		s.enter(err)
	} else if ctx.Err() == nil {
		s.refused(err)
	}
}

// ResetClock is implemented by database stores that remember when they
// were last reset (Reset records the time, by the database's clock, before
// it deletes anything).
type ResetClock interface {
	// ResetTimes returns when the database was last reset (the zero time
	// when it was not, within the retention window) and its time now, both
	// by the database's clock. On error it returns ErrUnavailable
	// (wrapped) when the database cannot be reached.
	ResetTimes(ctx context.Context) (reset, now time.Time, err error)
}

// resetCut is the last reset moved onto this instance's clock: spool
// records stamped before at were appended before the reset.
type resetCut struct {
	reset time.Time // by the database's clock, for the log
	at    time.Time // the same moment by this instance's clock
}

// lastReset asks the database when it was last reset, when it can say, and
// moves that time onto this instance's clock by how long ago it was: the
// instance's clock may be minutes off the database's (and off the clock of
// the instance that reset), and only the age of the reset, not its clock
// reading, can be compared with the records' stamps. The error is at most
// the round trip.
func (s *Store) lastReset(ctx context.Context) (resetCut, error) {
	rc, ok := tokenledger.FindStore[ResetClock](s.primary)
	if !ok {
		return resetCut{}, nil
	}
	reset, dbNow, err := rc.ResetTimes(ctx)
	if err != nil || reset.IsZero() {
		return resetCut{}, err
	}
	return resetCut{reset: reset, at: s.now().Add(-dbNow.Sub(reset))}, nil
}

// since returns the events of recs appended at or after the reset, and how
// many were appended before it: those were logged before a reset (by
// another instance, whose Reset cannot reach this spool) and the reset
// wiped everything logged before it. Records of earlier versions, without
// a time, are all kept.
func since(recs []record, c resetCut) (tokenledger.Batch, int) {
	cut := c.at.UnixMilli()
	var kept []tokenledger.Batch
	dropped := 0
	for _, r := range recs {
		if !c.at.IsZero() && r.At != 0 && r.At < cut {
			dropped += len(r.Events)
			continue
		}
		kept = append(kept, r.batch)
	}
	return tokenledger.JoinBatches(kept), dropped
}

// deliverEach delivers evs, a batch the database refused because an event
// of it would take a day's counter past its bound, one event at a time.
// An event refused so is kept in the spool's rejected file and logged
// (the database would answer the same on every attempt, and it would hold
// up every event behind it for good); it counts as not new. Any other
// error stops it: the batch stays in the spool, and the events already
// delivered count once when it is delivered again. Called with s.deliver
// held.
func (s *Store) deliverEach(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	evs := batch.Events()
	res := tokenledger.AddResult{New: make([]bool, len(evs))}
	for i := range evs {
		r, err := s.primary.Add(ctx, batch.Slice(i, i+1))
		if overflow := (*tokenledger.CounterOverflowError)(nil); errors.As(err, &overflow) {
			if err := s.spool.reject(ctx, evs[i], err.Error()); err != nil {
				return res, err
			}
			s.log.Error(fmt.Sprintf("📦 The database refused spooled event %q for itself, so it is set aside in %s and not counted; the events behind it are delivered (see docs/operations.md, \"Delivery refused\")",
				evs[i].ID, filepath.Join(s.spool.Dir(), RejectedFile)), "error", err.Error())
			continue
		}
		if err != nil {
			return res, err
		}
		res.New[i] = r.New[0]
	}
	return res, nil
}

// Run delivers spooled events in the background until ctx ends, waking
// on new spooled events and retrying with capped exponential backoff
// while the database stays down. serve runs it as one of its actors.
func (s *Store) Run(ctx context.Context) error {
	wait := s.minWait
	var notBefore time.Time // no attempt before this, however often kicked
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-timer.C:
		}
		if time.Now().Before(notBefore) || !s.FallbackStatus().Active {
			continue
		}
		if _, err := s.Drain(ctx); err == nil {
			wait, notBefore = s.minWait, time.Time{}
			if s.FallbackStatus().Active {
				timer.Reset(0) // more arrived while delivering
			}
			continue
		}
		notBefore = time.Now().Add(wait)
		timer.Reset(wait)
		wait = min(2*wait, s.maxWait)
	}
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
