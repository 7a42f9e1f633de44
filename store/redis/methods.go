package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/kvrest"
)

// ConnectedMessage is logged when the store first reaches the database,
// and again whenever it reaches it after having failed to.
const ConnectedMessage = "✅ Redis client connected for token usage"

// UnavailableMessage is logged once when the database stops answering (and
// not again until it has answered).
const UnavailableMessage = "❌ Redis unavailable for token usage"

// Add counts each event whose ID is new within its UTC day, in one round
// trip (one per master concerned on a cluster). On error it returns a
// wrapped tokenledger.ErrUnavailable naming the server when the database
// could not be reached or did not answer in time, the context's error when
// ctx ended, kvrest.ErrReadOnly with only a read-only token, or
// tokenledger.ErrClosed after Close. Retrying the same events after an
// error never counts one twice.
func (c *Store) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	events := batch.Events()
	if c.closed.Load() {
		return tokenledger.AddResult{}, tokenledger.ErrClosed
	}
	if c.ReadOnly() {
		return tokenledger.AddResult{}, c.readOnlyErr(fmt.Sprintf("add %d events", len(events)))
	}
	if c.rest == nil {
		res, err := c.add(ctx, events)
		return res, c.closedErr(c.track(err))
	}
	// One deadline for the whole Add: after a NOSCRIPT the affected calls
	// are sent again as EVAL, a second request that must not get a timeout
	// of its own.
	cctx, cancel := c.rest.WithTimeout(ctx)
	defer cancel()
	res, err := c.add(cctx, events)
	if err != nil && ctx.Err() == nil && kvrest.TimedOut(cctx) && !errors.Is(err, tokenledger.ErrUnavailable) {
		// The timeout ran out between the two requests: the database did
		// not answer in time, like any other timeout.
		err = fmt.Errorf("%w: no answer within the %s timeout: %w", tokenledger.ErrUnavailable, c.rest.Timeout(), err)
	}
	return res, c.closedErr(c.track(err))
}

// Days returns the days in [q.From, q.To] that hold usage, oldest first,
// in at most two round trips (docs/redis.md, "Reading"). Errors are as for
// Add, plus a wrapped error naming the key when stored data cannot be read.
func (c *Store) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if c.closed.Load() {
		return nil, tokenledger.ErrClosed
	}
	days, err := c.days(ctx, q)
	return days, c.closedErr(c.track(err))
}

// Reset deletes every key under the store's prefix on every master with
// SCAN and UNLINK (never FLUSHDB or KEYS), leaving all other keys alone.
// Errors are as for Add.
func (c *Store) Reset(ctx context.Context) error {
	if c.closed.Load() {
		return tokenledger.ErrClosed
	}
	if c.ReadOnly() {
		return c.readOnlyErr("reset")
	}
	return c.closedErr(c.track(c.reset(ctx)))
}

// Check writes a probe key under the prefix with a 10 s expiry, reads it
// back and deletes it, in one round trip; it touches no usage data. With
// only a read-only token it makes one read and, when that works, returns
// an error wrapping kvrest.ErrReadOnly. Its error names the server and
// what failed.
func (c *Store) Check(ctx context.Context) error {
	if c.closed.Load() {
		return tokenledger.ErrClosed
	}
	if c.ReadOnly() {
		if err := c.closedErr(c.track(c.readProbe(ctx))); err != nil {
			return err
		}
		return fmt.Errorf("%s: check: reads work, but %w", c.server, kvrest.ErrReadOnly)
	}
	return c.closedErr(c.track(c.check(ctx)))
}

// HasMark reports whether SetMark(name) was called within the last R + 1
// days; the migration uses it to remember files it could not rename.
// Errors are as for Check.
func (c *Store) HasMark(ctx context.Context, name string) (bool, error) {
	if c.closed.Load() {
		return false, tokenledger.ErrClosed
	}
	ok, err := c.hasMark(ctx, name)
	return ok, c.closedErr(c.track(err))
}

// LastReset returns when Reset last ran, by the database's clock, the
// zero time when it did not within the last R + 1 days. Errors are as for
// Check.
func (c *Store) LastReset(ctx context.Context) (time.Time, error) {
	if c.closed.Load() {
		return time.Time{}, tokenledger.ErrClosed
	}
	t, err := c.lastReset(ctx)
	return t, c.closedErr(c.track(err))
}

// ResetTimes returns when Reset last ran and the time now, both by the
// database's clock (see fallback.ResetClock). Errors are as for Check.
func (c *Store) ResetTimes(ctx context.Context) (reset, now time.Time, err error) {
	if c.closed.Load() {
		return time.Time{}, time.Time{}, tokenledger.ErrClosed
	}
	reset, now, err = c.resetTimes(ctx)
	return reset, now, c.closedErr(c.track(err))
}

// SetMark records name for R + 1 days. Errors are as for Add.
func (c *Store) SetMark(ctx context.Context, name string) error {
	if c.closed.Load() {
		return tokenledger.ErrClosed
	}
	if c.ReadOnly() {
		return c.readOnlyErr("write marker")
	}
	return c.closedErr(c.track(c.setMark(ctx, name)))
}

// track logs the link's state changes: ConnectedMessage after the first
// success (and after a success that follows a failure), UnavailableMessage
// after the first failure to reach the database. It returns err, with a
// hint added when the REST API refused a command for lack of permission.
func (c *Store) track(err error) error {
	switch {
	case err == nil:
		if c.state.Swap(stateUp) != stateUp {
			c.log.Info(ConnectedMessage, c.logAttrs("prefix", c.keys.Prefix())...)
		}
	case errors.Is(err, tokenledger.ErrUnavailable):
		if c.state.Swap(stateDown) != stateDown {
			c.log.Warn(UnavailableMessage, c.logAttrs("err", err)...)
		}
	}
	var re ReplyError
	if c.rest != nil && err != nil && errors.As(err, &re) && re.Code() == "NOPERM" {
		return fmt.Errorf("%w (the token may not run this command: is it the read-only token? Writes need the standard REST token)", err)
	}
	return err
}

// logAttrs returns the attributes of a link log line: the server, the
// transport when it is not the Redis protocol, then key and value.
func (c *Store) logAttrs(key string, value any) []any {
	attrs := append([]any{"server", c.info.Location}, c.via...)
	return append(attrs, key, value)
}

// closedErr turns the error of a call that raced with Close into ErrClosed.
func (c *Store) closedErr(err error) error {
	if err != nil && c.closed.Load() {
		return fmt.Errorf("%s: %w", c.server, tokenledger.ErrClosed)
	}
	return err
}

// readOnlyErr is the error of a write on a store with only a read-only token.
func (c *Store) readOnlyErr(op string) error {
	return fmt.Errorf("%s: %s: %w", c.server, op, kvrest.ErrReadOnly)
}
