package main

import (
	"sync"
	"time"
)

// request is one request the load sent, kept so that it can be sent again
// byte for byte: to re-send acknowledged events, and to settle events
// whose first sending had no clear answer.
type request struct {
	path        string // "/api/tokens" or "/v1/traces"
	contentType string
	body        []byte
	ids         []string
}

// expected is one event the load made: where it must be counted.
type expected struct {
	day, user, model string
	tokens           int64
	acked            bool
}

// proxied is one call through the recording proxy. Its event's id is the
// stand-in upstream's response id, which the client cannot send again, so
// it is counted as certain only when the client got the whole answer and
// its instance was not killed before the recording could finish.
type proxied struct {
	instance   int
	user       string
	model      string
	day        string
	tokens     int64 // prompt + completion of the answer's usage
	answered   bool  // HTTP 200 and the whole body read
	start, end time.Time
}

// ledger is what the load sent and what it was told.
type ledger struct {
	mu      sync.Mutex
	events  map[string]*expected
	unclear []*request // requests without a clear answer, holding unacknowledged events
	proxied []proxied
	kills   [2][]time.Time // when each instance was SIGKILLed
	resent  int64          // events sent again after their acknowledgement
	reads   map[int]int    // read answers by status
	errors  []string       // answers that should never happen (a 4xx, a bad body)
}

func newLedger() *ledger {
	return &ledger{events: map[string]*expected{}, reads: map[int]int{}}
}

// sent records a request and its status (0: no answer).
func (l *ledger) sent(req *request, evs []*expected, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, id := range req.ids {
		if evs != nil {
			l.events[id] = evs[i]
		}
		if status == 200 {
			l.events[id].acked = true
		}
	}
	if status != 200 {
		l.unclear = append(l.unclear, req)
	}
}

// fail records an answer that breaks the contract.
func (l *ledger) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errors) < 50 {
		l.errors = append(l.errors, msg)
	}
}

// pending returns the unclear requests still holding an unacknowledged
// event, forgetting the others.
func (l *ledger) pending() []*request {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*request
	for _, r := range l.unclear {
		for _, id := range r.ids {
			if !l.events[id].acked {
				out = append(out, r)
				break
			}
		}
	}
	l.unclear = out
	return append([]*request(nil), out...)
}

// killed reports whether instance i was SIGKILLed between from and to.
func (l *ledger) killed(i int, from, to time.Time) bool {
	for _, t := range l.kills[i] {
		if !t.Before(from) && !t.After(to) {
			return true
		}
	}
	return false
}
