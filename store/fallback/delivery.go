package fallback

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tokenledger/tokenledger"
)

// deliverBatch is how many spooled events one database call carries.
const deliverBatch = 1000

// refusalLogEvery bounds how often a lasting refusal is logged again
// (serverless instances try to deliver at the start of every request).
const refusalLogEvery = time.Minute

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
