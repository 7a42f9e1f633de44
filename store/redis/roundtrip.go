package redis

import (
	"context"
	"fmt"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// fail wraps err from a failed round trip of op: the context's error when
// ctx ended, otherwise ErrUnavailable.
func (c *Store) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %s: %w", c.server, op, cerr)
	}
	return fmt.Errorf("%s: %s: %w: %w", c.server, op, tokenledger.ErrUnavailable, err)
}

// replyFail wraps a Redis error reply to op: ErrUnavailable when the server
// cannot serve now, a plain error otherwise.
func (c *Store) replyFail(op string, e ReplyError) error {
	if e.Unavailable() {
		return fmt.Errorf("%s: %s: %w: %w", c.server, op, tokenledger.ErrUnavailable, e)
	}
	return fmt.Errorf("%s: %s: %w", c.server, op, e)
}

// do runs cmds in one round trip and checks the reply count.
func (c *Store) do(ctx context.Context, op string, cmds [][]any) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	replies, err := c.pipe.Do(ctx, cmds)
	return c.checkReplies(ctx, op, len(cmds), replies, err)
}

// sendCalls sends add calls in one round trip: through the combiner, which
// may merge them with other callers' calls of their day, or as they are.
// Each reply is the script's answer to its call, or a ReplyError.
func (c *Store) sendCalls(ctx context.Context, op string, calls []*call) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	if c.comb != nil {
		replies, err := c.comb.sendCalls(ctx, calls)
		return c.checkReplies(ctx, op, len(calls), replies, err)
	}
	cmds := make([][]any, len(calls))
	for i, cl := range calls {
		cmds[i] = cl.args()
	}
	s, ok := c.pipe.(wire.Sender)
	if !ok {
		replies, err := c.pipe.Do(ctx, cmds)
		return c.checkReplies(ctx, op, len(cmds), replies, err)
	}
	wait := make([]bool, len(cmds))
	for i := range wait {
		wait[i] = true
	}
	replies, errs, err := s.Send(ctx, cmds, wait)
	for _, e := range errs {
		if err == nil && e != nil {
			err = e
		}
	}
	return c.checkReplies(ctx, op, len(cmds), replies, err)
}

// checkReplies turns a failed round trip of op into its error, and checks
// that it answered each of its n commands.
func (c *Store) checkReplies(ctx context.Context, op string, n int, replies []any, err error) ([]any, error) {
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	if len(replies) != n {
		return nil, fmt.Errorf("%s: %s: %w: sent %d commands, got %d replies", c.server, op, tokenledger.ErrUnavailable, n, len(replies))
	}
	return replies, nil
}
