package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// scanCount is the COUNT hint of each SCAN in a reset.
const scanCount = 1000

// nodeError carries an error of fn through ForEachNode unchanged.
type nodeError struct{ err error }

func (e *nodeError) Error() string { return e.err.Error() }

// eachNode calls fn for every master of a cluster, concurrently, or for
// the store's own pipeline on a single endpoint, and returns the first
// error fn returned, or a wrapped error when the masters could not be
// listed.
func (c *Store) eachNode(ctx context.Context, op string, fn func(ctx context.Context, d wire.Pipeline) error) error {
	if c.nodes == nil {
		return fn(ctx, c.pipe)
	}
	err := c.nodes.ForEachNode(ctx, func(ctx context.Context, d wire.Pipeline) error {
		if err := fn(ctx, d); err != nil {
			return &nodeError{err}
		}
		return nil
	})
	var ne *nodeError
	if errors.As(err, &ne) {
		return ne.err
	}
	if err != nil {
		return c.fail(ctx, op+": list the masters", err)
	}
	return nil
}

// reset deletes every key under the prefix on every master (SCAN MATCH
// "<prefix>:{*" and UNLINK, one UNLINK per hash slot). It first records
// the time (see lastReset), so that events spooled before the reset and
// delivered after it are dropped rather than brought back.
func (c *Store) reset(ctx context.Context) error {
	const op = "reset"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	ttl := int64(c.retention+1) * 24 * 3600
	stamp, err := c.markReset(ctx, op, ttl) // by the database's clock: see resetclock.go
	if err != nil {
		return err
	}
	if c.cache != nil {
		c.cache.clear()
	}
	if err := c.eachNode(ctx, op, c.resetNode); err != nil {
		return err
	}
	// The same time under a second marker says the deletion finished: until
	// then no reader keeps what it reads (see dayCache).
	replies, err := c.do(ctx, op, [][]any{{"SET", c.keys.Mark(resetDoneMark), stamp, "EX", ttl}})
	if err != nil {
		return err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return c.replyFail(op+": record that it finished", e)
	}
	return nil
}

// resetMark names the marker that holds the time of the last Reset, in
// Unix milliseconds.
const resetMark = "reset"

// resetDoneMark names the marker a Reset sets to the same time once its
// deletion finished; while it differs from resetMark's, a reset is under
// way (or died half-way) and reads are not cached.
const resetDoneMark = "resetdone"

// lastReset returns when a reset last ran (by the database's clock), the
// zero time when none did within the last R + 1 days. A marker that does
// not hold a time is an error naming the key.
func (c *Store) lastReset(ctx context.Context) (time.Time, error) {
	const op = "read the time of the last reset"
	key := c.keys.Mark(resetMark)
	replies, err := c.do(ctx, op, [][]any{{"GET", key}})
	if err != nil {
		return time.Time{}, err
	}
	switch r := replies[0].(type) {
	case nil:
		return time.Time{}, nil
	case ReplyError:
		return time.Time{}, c.replyFail(op, r)
	}
	ms, err := toInt(replies[0])
	if err != nil || ms < 0 {
		return time.Time{}, fmt.Errorf("%s: %s: key %s does not hold a time in Unix milliseconds", c.server, op, key)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// resetNode deletes the prefix's keys on one node, each page's UNLINKs
// pipelined with the next SCAN.
func (c *Store) resetNode(ctx context.Context, d wire.Pipeline) error {
	const op = "reset"
	cursor := "0"
	var unlink [][]any // the previous page's deletions, sent with the next SCAN
	for {
		cmds := append(slices.Clip(unlink), []any{"SCAN", cursor, "MATCH", c.keys.Pattern(), "COUNT", int64(scanCount)})
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %s: %w", c.server, op, err)
		}
		replies, err := d.Do(ctx, cmds)
		if err != nil {
			return c.fail(ctx, op, err)
		}
		if len(replies) != len(cmds) {
			return fmt.Errorf("%s: %s: %w: sent %d commands, got %d replies", c.server, op, tokenledger.ErrUnavailable, len(cmds), len(replies))
		}
		for _, r := range replies[:len(unlink)] {
			if e, ok := r.(ReplyError); ok {
				return c.replyFail(op+": UNLINK", e)
			}
		}
		scan := replies[len(replies)-1]
		if e, ok := scan.(ReplyError); ok {
			return c.replyFail(op+": SCAN", e)
		}
		arr, ok := scan.([]any)
		if !ok || len(arr) != 2 {
			return fmt.Errorf("%s: %s: SCAN answered %T, want a cursor and a list of keys", c.server, op, scan)
		}
		next, ok1 := arr[0].(string)
		keys, ok2 := arr[1].([]any)
		if !ok1 || (!ok2 && arr[1] != nil) {
			return fmt.Errorf("%s: %s: SCAN answered a %T cursor and %T keys", c.server, op, arr[0], arr[1])
		}
		// Redis always moves the cursor on; one that comes back as sent
		// would make this loop forever (a broken or hostile server, or a
		// proxy repeating a cached answer).
		if next == cursor && next != "0" {
			return fmt.Errorf("%s: %s: SCAN answered the cursor %.40q it was given, so the scan would never end", c.server, op, next)
		}
		// Group by hash tag: a multi-key UNLINK must stay within one slot.
		bySlot := map[string][]any{}
		var order []string
		for _, k := range keys {
			ks, ok := k.(string)
			if !ok || !c.keys.Owns(ks) {
				continue
			}
			tag := HashTag(ks)
			if _, seen := bySlot[tag]; !seen {
				order = append(order, tag)
				bySlot[tag] = []any{"UNLINK"}
			}
			bySlot[tag] = append(bySlot[tag], ks)
		}
		unlink = nil
		for _, tag := range order {
			unlink = append(unlink, bySlot[tag])
		}
		if next == "0" {
			if len(unlink) == 0 {
				return nil
			}
			replies, err := d.Do(ctx, unlink)
			if err != nil {
				return c.fail(ctx, op, err)
			}
			for _, r := range replies {
				if e, ok := r.(ReplyError); ok {
					return c.replyFail(op+": UNLINK", e)
				}
			}
			return nil
		}
		cursor = next
	}
}
