package loadgen

import (
	"context"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/tokenledger/tokenledger"
)

// event states
const (
	stNone     uint8 = iota // not yet sent
	stStored                // acknowledged: counted exactly once
	stRejected              // refused: not counted
	stUnknown               // may or may not be counted
)

// client is one sending goroutine's state. Only it touches its fields
// until the load ends.
type client struct {
	w       int
	rng     *mrand.Rand
	states  []uint8 // by seq
	hist    histogram
	models  []tokenledger.Totals // expected, by model index
	users   []tokenledger.Totals // expected, by user index
	errs    map[string]int64
	lines   map[string]string
	reqs    int64
	events  int64
	resent  int64
	acc     int64
	dup     int64
	keys    []key
	body    []byte
	evbuf   []tokenledger.Event
	stopped bool
}

// load runs the clients until the events are sent, the duration is over
// or Stop is closed, and returns how long it took.
func (r *run) load(ctx context.Context, clients []*client, start time.Time) time.Duration {
	var wg sync.WaitGroup
	done := make(chan struct{})
	if r.cfg.Events <= 0 {
		t := time.AfterFunc(r.cfg.Duration, func() { r.stop.Store(true) })
		defer t.Stop()
	}
	if r.cfg.Stop != nil {
		go func() {
			select {
			case <-r.cfg.Stop:
				r.stop.Store(true)
			case <-done:
			}
		}()
	}
	go func() {
		select {
		case <-ctx.Done():
			r.stop.Store(true)
		case <-done:
		}
	}()
	if r.cfg.Progress != nil {
		go func() {
			t := time.NewTicker(r.cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					r.cfg.Progress(Progress{Elapsed: time.Since(start), Requests: r.reqs.Load(), Events: r.events.Load(), Errors: r.errCount.Load()})
				}
			}
		}()
	}
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(ctx, c)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	return elapsed
}

// client sends requests until the run stops.
func (r *run) client(ctx context.Context, c *client) {
	for !r.stop.Load() {
		n := r.cfg.Batch
		if r.cfg.Events > 0 {
			left := r.left.Add(int64(-n)) + int64(n)
			if left <= 0 {
				return
			}
			n = int(min(left, int64(n)))
		}
		// Pick the events: new ones, and with probability Resend one this
		// client sent in an earlier request.
		c.keys = c.keys[:0]
		sent := int64(len(c.states))
		for range n {
			if sent > 0 && r.cfg.Resend > 0 && c.rng.Float64() < r.cfg.Resend {
				c.keys = append(c.keys, key{c.w, c.rng.Int64N(sent)})
				c.resent++
				continue
			}
			c.keys = append(c.keys, key{c.w, int64(len(c.states))})
			c.states = append(c.states, stNone)
		}
		start := time.Now()
		a := r.send(ctx, c, c.keys)
		c.hist.add(time.Since(start))
		c.reqs++
		c.events += int64(n)
		r.reqs.Add(1)
		r.events.Add(int64(n))
		r.record(c, c.keys, a)
		if ctx.Err() != nil {
			return
		}
	}
}

// send encodes keys and sends them as one request.
func (r *run) send(ctx context.Context, c *client, keys []key) Answer {
	b := c.body[:0]
	if len(keys) > 1 {
		b = append(b, '[')
	}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.names.appendJSON(b, k, specOf(r.seed, k, r.cfg.Models, r.cfg.Users, r.cfg.Sessions), r.tsText)
	}
	if len(keys) > 1 {
		b = append(b, ']')
	}
	c.body = b
	events := func() []tokenledger.Event {
		c.evbuf = c.evbuf[:0]
		for _, k := range keys {
			c.evbuf = append(c.evbuf, r.names.event(k, specOf(r.seed, k, r.cfg.Models, r.cfg.Users, r.cfg.Sessions), r.ts))
		}
		return c.evbuf
	}
	return r.target.Send(ctx, b, events)
}

// record moves the events of one request to their new states and counts
// the answer.
func (r *run) record(c *client, keys []key, a Answer) {
	if a.Fatal && r.fatal.CompareAndSwap(nil, &a) {
		r.stop.Store(true)
	}
	if a.Kind != "" {
		c.errs[a.Kind]++
		r.errCount.Add(1)
		if _, ok := c.lines[a.Kind]; !ok {
			c.lines[a.Kind] = a.Detail
		}
	}
	switch a.Outcome {
	case Stored:
		c.acc += int64(a.Accepted)
		c.dup += int64(a.Duplicates)
		for _, k := range keys {
			if c.states[k.seq] != stStored {
				c.states[k.seq] = stStored
				sp := specOf(r.seed, k, r.cfg.Models, r.cfg.Users, r.cfg.Sessions)
				t := sp.totals()
				c.models[sp.model].Add(t)
				c.users[sp.user].Add(t)
			}
		}
	case Rejected:
		for _, k := range keys {
			if c.states[k.seq] == stNone {
				c.states[k.seq] = stRejected
			}
		}
	case Unknown:
		for _, k := range keys {
			if s := c.states[k.seq]; s == stNone || s == stRejected {
				c.states[k.seq] = stUnknown
			}
		}
	}
}

// resendUnknown sends every event of unknown outcome again, in requests of
// the run's batch size, in up to ResendAttempts rounds (with a growing
// pause between them), until each is acknowledged or ctx ends. A correct
// service counts such an event once, whether or not the lost request had
// counted it.
func (r *run) resendUnknown(ctx context.Context, clients []*client) {
	sem := make(chan struct{}, 16)
	for attempt := 0; attempt < r.cfg.ResendAttempts && ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(50<<attempt)*time.Millisecond, 2*time.Second)):
			}
		}
		var wg sync.WaitGroup
		pending := false
		for _, c := range clients {
			var keys []key
			for seq, s := range c.states {
				if s == stUnknown {
					keys = append(keys, key{c.w, int64(seq)})
				}
			}
			if len(keys) == 0 {
				continue
			}
			pending = true
			wg.Add(1)
			go func() { // one goroutine per client: it owns the client's state
				defer wg.Done()
				for i := 0; i < len(keys) && ctx.Err() == nil; i += r.cfg.Batch {
					chunk := keys[i:min(i+r.cfg.Batch, len(keys))]
					sem <- struct{}{}
					a := r.send(ctx, c, chunk)
					<-sem
					if a.Outcome == Stored {
						r.record(c, chunk, a)
					}
				}
			}()
		}
		wg.Wait()
		if !pending {
			return
		}
	}
}
