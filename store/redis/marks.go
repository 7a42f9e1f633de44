package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// probeTTL is how long a check's probe key lives if its UNLINK is lost.
const probeTTL = 10 * time.Second

// check writes a probe key under the prefix (with a short expiry), reads it
// back and deletes it, in one round trip. It touches no usage data.
func (c *Store) check(ctx context.Context) error {
	const op = "check"
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:8])
	value := hex.EncodeToString(b[8:])
	key := c.keys.Probe(token)
	replies, err := c.do(ctx, op, [][]any{
		{"SET", key, value, "PX", probeTTL.Milliseconds()},
		{"GET", key},
		{"UNLINK", key},
	})
	if err != nil {
		return err
	}
	for i, r := range replies {
		if e, ok := r.(ReplyError); ok {
			return c.replyFail(fmt.Sprintf("%s: %s", op, [...]string{"write", "read", "delete"}[i]), e)
		}
	}
	if replies[0] != "OK" {
		return fmt.Errorf("%s: %s: writing probe key %s answered %v, want OK", c.server, op, key, replies[0])
	}
	if replies[1] != value {
		return fmt.Errorf("%s: %s: probe key %s read back %v, want what was written", c.server, op, key, replies[1])
	}
	return nil
}

// hasMark reports whether setMark(name) was called within the last R + 1
// days (see Keys.Mark).
func (c *Store) hasMark(ctx context.Context, name string) (bool, error) {
	const op = "read marker"
	replies, err := c.do(ctx, op, [][]any{{"EXISTS", c.keys.Mark(name)}})
	if err != nil {
		return false, err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return false, c.replyFail(op, e)
	}
	n, err := toInt(replies[0])
	if err != nil {
		return false, fmt.Errorf("%s: %s: %w", c.server, op, err)
	}
	return n == 1, nil
}

// setMark records name for R + 1 days, after which whatever it marked
// (an imported file) has expired anyway.
func (c *Store) setMark(ctx context.Context, name string) error {
	const op = "write marker"
	ttl := int64(c.retention+1) * 24 * 3600
	replies, err := c.do(ctx, op, [][]any{{"SET", c.keys.Mark(name), "1", "EX", ttl}})
	if err != nil {
		return err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return c.replyFail(op, e)
	}
	return nil
}

// loadScript loads the add scripts (v7's layout and the summed v11) on every master (SCRIPT LOAD), so that
// the first add need not send its source; add loads it itself on NOSCRIPT.
func (c *Store) loadScript(ctx context.Context) error {
	const op = "load script"
	return c.eachNode(ctx, op, func(ctx context.Context, d wire.Pipeline) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %s: %w", c.server, op, err)
		}
		// One command a request: over the KV REST API a single command
		// is a POST /, as every other probe of the server.
		for _, sc := range []struct{ src, sha string }{{addScript, addSHA}, {sumScript, sumSHA}} {
			replies, err := d.Do(ctx, [][]any{{"SCRIPT", "LOAD", sc.src}})
			if err != nil {
				return c.fail(ctx, op, err)
			}
			if len(replies) != 1 {
				return fmt.Errorf("%s: %s: %w: got %d replies to one command", c.server, op, tokenledger.ErrUnavailable, len(replies))
			}
			if e, ok := replies[0].(ReplyError); ok {
				return c.replyFail(op, e)
			}
			if replies[0] != sc.sha {
				return fmt.Errorf("%s: %s: the server named the script %v, want %s", c.server, op, replies[0], sc.sha)
			}
		}
		return nil
	})
}
