// Package resp is the Redis-protocol transport of the Redis store
// (store/redis): it sends pipelines of commands through go-redis to a
// single server or a Redis Cluster, routes a cluster's commands by slot,
// and, when asked to, holds writes until replicas have them (WAIT). It
// knows nothing of tokenledger. docs/redis.md, "Transports".
package resp

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// goRedis is what the transport needs of a go-redis client (single server
// or cluster).
type goRedis interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
	Pipeline() redis.Pipeliner
	Close() error
}

// Client sends pipelines to a single server or a Redis Cluster. It is a
// wire.Sender and a wire.Nodes. It is safe for concurrent use.
type Client struct {
	c        goRedis
	cluster  *redis.ClusterClient // nil for a single server
	location string               // host:port or a comma-separated seed list
	// timeout bounds a round trip: go-redis waits up to twice its read
	// timeout for the replies of a pipeline from a server that does not
	// answer, and its cluster client sends a lone command that timed out
	// again, up to MaxRedirects (3) times.
	timeout time.Duration
	// wait, when set, holds the writes marked for it until replicas have
	// them (see replicaWait); the round trip may then take wait.timeout more.
	wait *replicaWait
}

var (
	_ wire.Sender = (*Client)(nil)
	_ wire.Nodes  = (*Client)(nil)
)

// Do sends cmds as one pipeline and converts the replies (see
// wire.Pipeline). Any failure other than a command's own Redis error fails
// the whole round trip. It never waits for replicas.
func (d *Client) Do(ctx context.Context, cmds [][]any) ([]any, error) {
	out, errs, err := d.Send(ctx, cmds, nil)
	if err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Send sends cmds as one pipeline (one per master on a cluster, when it
// waits). It returns one converted reply per command and, per command, the
// transport error that kept it from an answer (nil when it has one); err
// is set when the round trip failed as a whole before any command was
// answered. With WaitReplicas, a pipeline holding a command marked in wait
// ends with WAIT, and those commands fail when too few replicas acknowledge.
func (d *Client) Send(ctx context.Context, cmds [][]any, wait []bool) (out []any, errs []error, err error) {
	waiting := d.wait != nil && slices.Contains(wait, true)
	if d.timeout > 0 {
		timeout := d.timeout
		if waiting {
			timeout += d.wait.timeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if waiting {
		return d.wait.exec(ctx, d, cmds, wait)
	}
	return send(ctx, d.c, cmds)
}

// send is Send on c without a bound of its own nor waiting.
func send(ctx context.Context, c goRedis, cmds [][]any) (out []any, errs []error, err error) {
	out = make([]any, len(cmds))
	errs = make([]error, len(cmds))
	if len(cmds) == 1 {
		// One command needs no pipeline (nor go-redis's pipeline pool).
		out[0], errs[0] = convert(c.Do(ctx, cmds[0]...))
		return out, errs, nil
	}
	pipe := c.Pipeline()
	rc := make([]*redis.Cmd, len(cmds))
	for i, args := range cmds {
		rc[i] = pipe.Do(ctx, args...)
	}
	_, execErr := pipe.Exec(ctx)
	answered := false
	for i, rcmd := range rc {
		out[i], errs[i] = convert(rcmd)
		answered = answered || rcmd.Err() != nil
	}
	if execErr != nil && !errors.Is(execErr, redis.Nil) && !answered {
		// The pipeline failed before any command ran, e.g. the
		// connection's handshake was refused (WRONGPASS, NOAUTH).
		return nil, nil, execErr
	}
	return out, errs, nil
}

// convert turns a go-redis command result into a wire reply, or the
// transport error that kept it from one.
func convert(c *redis.Cmd) (any, error) {
	v, err := c.Result()
	var rerr redis.Error
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, redis.Nil):
		return nil, nil
	case errors.As(err, &rerr):
		return wire.ReplyError(rerr.Error()), nil
	}
	return nil, err
}

// ForEachNode calls fn for each master with a Pipeline bound to it; on a
// single server, for that server.
func (d *Client) ForEachNode(ctx context.Context, fn func(ctx context.Context, node wire.Pipeline) error) error {
	if d.cluster == nil {
		return fn(ctx, d)
	}
	return d.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return fn(ctx, &Client{c: c, location: c.Options().Addr, timeout: c.Options().ReadTimeout})
	})
}

// Location returns the server's host:port, or a cluster's comma-separated
// seed list, without credentials.
func (d *Client) Location() string { return d.location }

// Cluster reports whether the client is a Redis Cluster's.
func (d *Client) Cluster() bool { return d.cluster != nil }

// Close closes the connections.
func (d *Client) Close() error { return d.c.Close() }
