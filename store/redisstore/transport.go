package redisstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	redismodel "github.com/tokenledger/tokenledger/store/redis"
)

// goRedis is what the transport needs of a go-redis client (single server
// or cluster).
type goRedis interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
	Pipeline() redis.Pipeliner
}

// doer is the redismodel.Doer over a go-redis client: one pipeline (one
// round trip, per master on a cluster) per Do.
type doer struct {
	c goRedis
	// timeout bounds a round trip: go-redis waits up to twice its read
	// timeout for the replies of a pipeline from a server that does not
	// answer, and its cluster client sends a lone command that timed out
	// again, up to MaxRedirects (3) times. 0: no bound of its own.
	timeout time.Duration
	// wait, when set, holds add calls until replicas have their writes
	// (see replicaWait); the round trip may then take wait.timeout more.
	wait *replicaWait
}

// Do sends cmds as one pipeline and converts the replies (see
// redismodel.Doer). Any failure other than a command's own Redis error
// fails the whole round trip.
func (d *doer) Do(ctx context.Context, cmds [][]any) ([]any, error) {
	out, errs, err := d.exec(ctx, cmds)
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

// exec sends cmds as one pipeline. It returns one converted reply per
// command and, per command, the transport error that kept it from an
// answer (nil when it has one); err is set when the round trip failed as a
// whole before any command was answered.
func (d *doer) exec(ctx context.Context, cmds [][]any) (out []any, errs []error, err error) {
	wait := d.wait != nil && d.wait.needed(cmds)
	if d.timeout > 0 {
		timeout := d.timeout
		if wait {
			timeout += d.wait.timeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if wait {
		return d.wait.exec(ctx, d, cmds)
	}
	return send(ctx, d.c, cmds)
}

// send is exec on c without a bound of its own nor waiting.
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

// convert turns a go-redis command result into a redismodel reply, or the
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
		return redismodel.ReplyError(rerr.Error()), nil
	}
	return nil, err
}

// clusterDoer adds per-master access to a cluster's doer.
type clusterDoer struct {
	redismodel.Doer
	cc *redis.ClusterClient
}

// ForEachNode calls fn for each master with a Doer bound to it.
func (d *clusterDoer) ForEachNode(ctx context.Context, fn func(ctx context.Context, node redismodel.Doer) error) error {
	return d.cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return fn(ctx, &doer{c: c, timeout: c.Options().ReadTimeout})
	})
}

// Combining: concurrent Do calls (say, 64 request handlers each logging
// one event) are sent together, as one pipeline per flush, by a few
// flusher goroutines. Each call's commands stay in order, and a batch is
// still one round trip. Within a flush, the add script calls of one day
// (same prefix, day and expiry; one cluster slot) are merged into one
// EVALSHA carrying all their events, up to redismodel.MaxMergedEvents,
// and its reply is split back: the script's fixed work per call (type
// checks, the overflow guard's read, the EXPIREATs) and each hash field's
// HINCRBY are then paid once per merged call instead of once per caller.
// A merged call is atomic like each of its parts: if it fails, every
// caller it carries gets the failure (and may retry: ids keep retries
// exact). An id carried by two callers counts once, for the first one.
// What is saved besides is a write and a read system call per call on
// both sides, which on a small machine is much of the cost of a call. A
// lone call is sent at once: a flusher waiting on an empty queue takes it
// immediately.
const (
	// flushers is how many pipelines may be in flight at once.
	flushers = 4
	// maxFlushCommands bounds one flush (a soft bound: a call's commands
	// are never split).
	maxFlushCommands = 512
	// queueDepth is how many calls may wait for a flusher.
	queueDepth = 1024
)

// combine is false only in benchmarks that measure the store without the
// combiner, for comparison; merge likewise for the merging of add calls,
// and readCache for the validated cache of read days.
var combine, merge, readCache = true, true, true

// errStopped is returned to calls still waiting when the store closes.
var errStopped = errors.New("redis client is closed")

// request is one Do call waiting to be flushed.
type request struct {
	ctx  context.Context
	cmds [][]any
	out  []any
	err  error
	done chan struct{}
}

// combiner is a redismodel.Doer that sends concurrent calls together.
type combiner struct {
	d     *doer
	merge bool
	queue chan *request
	stop  chan struct{}
	wg    sync.WaitGroup
}

// newCombiner starts the flushers over d.
func newCombiner(d *doer) *combiner {
	c := &combiner{d: d, merge: merge, queue: make(chan *request, queueDepth), stop: make(chan struct{})}
	for range flushers {
		c.wg.Add(1)
		go c.run()
	}
	return c
}

// Do queues cmds for the next flush and waits for its replies, for ctx to
// end, or for the combiner to stop, whichever comes first. When ctx ends
// first the commands may still run; a call whose ctx has ended when its
// flush is built is not sent.
func (c *combiner) Do(ctx context.Context, cmds [][]any) ([]any, error) {
	r := &request{ctx: ctx, cmds: cmds, done: make(chan struct{})}
	select {
	case c.queue <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.stop:
		return nil, errStopped
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.stop:
		return nil, errStopped
	}
}

// close stops the flushers and waits for the flushes in progress.
func (c *combiner) close() {
	close(c.stop)
	c.wg.Wait()
}

// run is one flusher: it takes a call, adds whatever else is already
// waiting (up to maxFlushCommands), and sends them as one pipeline.
func (c *combiner) run() {
	defer c.wg.Done()
	var batch []*request
	for {
		select {
		case r := <-c.queue:
			batch = append(batch[:0], r)
		case <-c.stop:
			return
		}
		n := len(batch[0].cmds)
	more:
		for n < maxFlushCommands {
			select {
			case r := <-c.queue:
				batch = append(batch, r)
				n += len(r.cmds)
			default:
				break more
			}
		}
		c.flush(batch)
		clear(batch)
	}
}

// addGroup is the add script calls of one day merged into one command.
type addGroup struct {
	key    redismodel.AddGroup
	at     int     // index of the merged command in the pipeline
	parts  [][]any // the calls merged, in order
	events int
}

// slot says where the reply to one command of a call is: the command at
// index at of the pipeline, or, when g is set, the events [from, from+n)
// of the merged call g.
type slot struct {
	at      int
	g       *addGroup
	from, n int
}

// plan lays out the pipeline of one flush: every command of every call in
// order, except that add calls of one day are merged (see above). Only
// the latest merged call of a day takes further calls, and a command joins
// one only if that does not move it before the caller's previous command
// (which may be a full call, never merged), so one caller's commands run
// in the order it sent them: the first place of an id wins. It returns the
// commands to send and, per call, where each of its replies will be.
func (c *combiner) plan(live []*request) (cmds [][]any, slots [][]slot) {
	var open []*addGroup // the latest merged call of each day
	var merged []*addGroup
	slots = make([][]slot, len(live))
	for i, r := range live {
		slots[i] = make([]slot, len(r.cmds))
		// last is where this call's previous command went: a command may
		// join a merged call only at or after it, never move before it.
		last := -1
		for j, cmd := range r.cmds {
			if c.merge {
				if key, n, ok := redismodel.AddCall(cmd); ok && n < redismodel.MaxMergedEvents {
					k := slices.IndexFunc(open, func(g *addGroup) bool { return g.key == key })
					if k >= 0 && open[k].at >= last && open[k].events+n <= redismodel.MaxMergedEvents {
						g := open[k]
						slots[i][j] = slot{at: g.at, g: g, from: g.events, n: n}
						g.parts = append(g.parts, cmd)
						g.events += n
						last = g.at
						continue
					}
					g := &addGroup{key: key, at: len(cmds), parts: [][]any{cmd}, events: n}
					if k >= 0 {
						open[k] = g
					} else {
						open = append(open, g)
					}
					merged = append(merged, g)
					slots[i][j] = slot{at: g.at, g: g, n: n}
					last = g.at
					cmds = append(cmds, cmd)
					continue
				}
			}
			slots[i][j] = slot{at: len(cmds)}
			last = len(cmds)
			cmds = append(cmds, cmd)
		}
	}
	for _, g := range merged {
		if len(g.parts) > 1 {
			cmds[g.at] = redismodel.MergeAdd(g.parts)
		}
	}
	return cmds, slots
}

// flush sends the commands of the calls in batch whose context has not
// ended as one pipeline and hands each call its replies.
func (c *combiner) flush(batch []*request) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	cmds, slots := c.plan(live)
	// The pipeline serves several callers, so no caller's deadline bounds
	// it: the read and write timeouts do. Each caller waits on its own ctx.
	out, errs, err := c.d.exec(context.Background(), cmds)
	for i, r := range live {
		if err != nil {
			r.err = err
			close(r.done)
			continue
		}
		r.out = make([]any, len(r.cmds))
		for j, s := range slots[i] {
			if e := errs[s.at]; e != nil {
				r.out, r.err = nil, e
				break
			}
			if s.g == nil || len(s.g.parts) == 1 {
				r.out[j] = out[s.at]
				continue
			}
			if r.out[j], r.err = redismodel.SplitAddReply(out[s.at], s.g.events, s.from, s.n); r.err != nil {
				r.out = nil
				break
			}
		}
		close(r.done)
	}
}
