package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// MaxMergedEvents bounds the events the combiner merges into one call from
// concurrent callers, so that a caller with one event never waits on a
// call much longer than its own.
const MaxMergedEvents = 256

// The combiner sends concurrent callers' round trips together, one
// pipeline per flush, from a few flusher goroutines, and merges their add
// calls of one day into one call before it is encoded (docs/redis.md,
// "Combining and merging").
const (
	// flushers is how many pipelines may be in flight at once.
	flushers = 4
	// maxFlushCommands bounds one flush (a soft bound: a caller's commands
	// are never split).
	maxFlushCommands = 512
	// queueDepth is how many round trips may wait for a flusher.
	queueDepth = 1024
)

// errStopped is returned to round trips still waiting when the store closes.
var errStopped = errors.New("redis client is closed")

// request is one caller's round trip waiting to be flushed: plain
// commands, or add calls.
type request struct {
	ctx   context.Context
	cmds  [][]any
	calls []*call
	out   []any
	err   error
	done  chan struct{}
}

// size returns how many commands the request sends before merging.
func (r *request) size() int { return len(r.cmds) + len(r.calls) }

// combiner is a wire.Pipeline that sends concurrent round trips together
// over a wire.Sender.
type combiner struct {
	tr    wire.Sender
	merge bool
	queue chan *request
	stop  chan struct{}
	wg    sync.WaitGroup
}

// newCombiner starts the flushers over tr; merge says whether add calls
// of one day are merged.
func newCombiner(tr wire.Sender, merge bool) *combiner {
	c := &combiner{tr: tr, merge: merge, queue: make(chan *request, queueDepth), stop: make(chan struct{})}
	for range flushers {
		c.wg.Add(1)
		go c.run()
	}
	return c
}

// Do sends plain commands with the next flush (see wait).
func (c *combiner) Do(ctx context.Context, cmds [][]any) ([]any, error) {
	return c.wait(&request{ctx: ctx, cmds: cmds, done: make(chan struct{})})
}

// sendCalls sends add calls with the next flush (see wait); the reply of
// each is the script's answer to its events.
func (c *combiner) sendCalls(ctx context.Context, calls []*call) ([]any, error) {
	return c.wait(&request{ctx: ctx, calls: calls, done: make(chan struct{})})
}

// wait queues r for the next flush and waits for its replies, for its ctx
// to end, or for the combiner to stop, whichever comes first. When ctx
// ends first the commands may still run; a request whose ctx has ended
// when its flush is built is not sent.
func (c *combiner) wait(r *request) ([]any, error) {
	select {
	case c.queue <- r:
	case <-r.ctx.Done():
		return nil, r.ctx.Err()
	case <-c.stop:
		return nil, errStopped
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-r.ctx.Done():
		return nil, r.ctx.Err()
	case <-c.stop:
		return nil, errStopped
	}
}

// close stops the flushers and waits for the flushes in progress.
func (c *combiner) close() {
	close(c.stop)
	c.wg.Wait()
}

// run is one flusher: it takes a request, adds whatever else is already
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
		n := batch[0].size()
	more:
		for n < maxFlushCommands {
			select {
			case r := <-c.queue:
				batch = append(batch, r)
				n += r.size()
			default:
				break more
			}
		}
		c.flush(batch)
		clear(batch)
	}
}

// groupKey identifies the add calls that can be merged into one: the same
// day and expiry (so one cluster slot) and the same script command.
type groupKey struct {
	day, exp       int64
	eval, perEvent bool
}

// mergeable reports whether cl may be merged with other calls: not a call
// with a claim token (its token is its own), nor one of MaxMergedEvents
// events or more.
func (cl *call) mergeable() bool {
	return cl.token == "" && len(cl.events) < MaxMergedEvents
}

// addGroup is the add calls of one day merged into one command.
type addGroup struct {
	key    groupKey
	at     int     // index of the merged command in the pipeline
	parts  []*call // the calls merged, in order
	events int
}

// merged returns the call that carries the events of g's parts, in order.
func (g *addGroup) merged() *call {
	if len(g.parts) == 1 {
		return g.parts[0]
	}
	m := &call{day: g.parts[0].day, eval: g.key.eval, perEvent: g.key.perEvent, events: make([]tokenledger.Event, 0, g.events), fields: make([]string, 0, g.events)}
	for _, p := range g.parts {
		m.events = append(m.events, p.events...)
		m.fields = append(m.fields, p.fields...)
		m.withV6 = m.withV6 || p.withV6
	}
	return m
}

// slot says where the reply to one command of a request is: the command at
// index at of the pipeline, or, when g is set, the events [from, from+n)
// of the merged call g.
type slot struct {
	at      int
	g       *addGroup
	from, n int
}

// plan lays out the pipeline of one flush: every command of every request
// in order, except that add calls of one day are merged. Only the latest
// merged call of a day takes further calls, and a call joins one only if
// that does not move it before the caller's previous command, so one
// caller's commands run in the order it sent them: the first place of an
// id wins. It returns the commands, which of them wait for replicas, and
// per request where each of its replies will be.
func (c *combiner) plan(live []*request) (cmds [][]any, wait []bool, slots [][]slot) {
	var open []*addGroup // the latest merged call of each day
	var groups []*addGroup
	slots = make([][]slot, len(live))
	for i, r := range live {
		slots[i] = make([]slot, r.size())
		for j, cmd := range r.cmds {
			slots[i][j] = slot{at: len(cmds)}
			cmds, wait = append(cmds, cmd), append(wait, false)
		}
		// last is where this request's previous call went: a call may
		// join a merged call only at or after it, never move before it.
		last := -1
		for j, cl := range r.calls {
			n := len(cl.events)
			key := groupKey{day: cl.day.day, exp: cl.day.exp, eval: cl.eval, perEvent: cl.perEvent}
			k := -1
			if c.merge && cl.mergeable() {
				k = slices.IndexFunc(open, func(g *addGroup) bool { return g.key == key })
				if k >= 0 && open[k].at >= last && open[k].events+n <= MaxMergedEvents {
					g := open[k]
					slots[i][j] = slot{at: g.at, g: g, from: g.events, n: n}
					g.parts = append(g.parts, cl)
					g.events += n
					last = g.at
					continue
				}
			}
			g := &addGroup{key: key, at: len(cmds), parts: []*call{cl}, events: n}
			switch {
			case !c.merge || !cl.mergeable():
			case k >= 0:
				open[k] = g
			default:
				open = append(open, g)
			}
			groups = append(groups, g)
			slots[i][j] = slot{at: g.at, g: g, n: n}
			last = g.at
			cmds, wait = append(cmds, nil), append(wait, true)
		}
	}
	for _, g := range groups {
		cmds[g.at] = g.merged().args()
	}
	return cmds, wait, slots
}

// flush sends the commands of the requests in batch whose context has not
// ended as one pipeline and hands each request its replies.
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
	cmds, wait, slots := c.plan(live)
	// The pipeline serves several callers, so no caller's deadline bounds
	// it: the transport's timeouts do. Each caller waits on its own ctx.
	out, errs, err := c.tr.Send(context.Background(), cmds, wait)
	for i, r := range live {
		if err != nil {
			r.err = err
			close(r.done)
			continue
		}
		r.out = make([]any, r.size())
		for j, s := range slots[i] {
			if e := errs[s.at]; e != nil {
				r.out, r.err = nil, e
				break
			}
			if s.g == nil || len(s.g.parts) == 1 {
				r.out[j] = out[s.at]
				continue
			}
			if r.out[j], r.err = splitReply(out[s.at], s.g.events, s.from, s.n); r.err != nil {
				r.out = nil
				break
			}
		}
		close(r.done)
	}
}

// splitReply returns the reply of the events [from, from+n) of a merged
// call of total events, as that part's own call would have been answered:
// a Redis error reply as it is (the whole call failed), or those events'
// values of the array reply. Any other reply, or an array of any other
// length, is an error: the answer cannot be trusted.
func splitReply(r any, total, from, n int) (any, error) {
	switch x := r.(type) {
	case ReplyError:
		return x, nil
	case int64: // the summed script's answer is the whole call's
		return x, nil
	case []any:
		if len(x) == total && from >= 0 && n >= 0 && from+n <= total {
			return x[from : from+n : from+n], nil
		}
	}
	return nil, fmt.Errorf("a merged script call of %d events was answered %T with %d values", total, r, lenOf(r))
}
