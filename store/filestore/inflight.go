package filestore

import "github.com/tokenledger/tokenledger"

// dayID is the idempotency key of an event.
type dayID struct {
	day tokenledger.Date
	id  string
}

// ticket is one Add's claim on the new events it is writing. done is
// closed once they are counted (err nil) or given up (err set), so that an
// Add that found one of them in flight answers only after it is durable.
type ticket struct {
	done chan struct{}
	err  error
}

// claim is an event in flight and the Add writing it.
type claim struct {
	t *ticket
	e *tokenledger.Event
}

// inflight holds the events Adds have claimed but not yet counted, and
// per day the counters stored plus those in flight, so that each Add is
// checked for overflow against everything that may be counted before it.
// The Store's amu guards it.
type inflight struct {
	claims   map[dayID]claim
	reserved map[tokenledger.Date]*tokenledger.Day
	perDay   map[tokenledger.Date]int
}

func newInflight() inflight {
	return inflight{claims: map[dayID]claim{}, reserved: map[tokenledger.Date]*tokenledger.Day{}, perDay: map[tokenledger.Date]int{}}
}

// release drops the claim on e; with counted false (e was not written) the
// day's reserved counters are recomputed from stored, the counters of the
// day as stored, and the claims left.
func (f *inflight) release(e *tokenledger.Event, counted bool, stored func(tokenledger.Date) *tokenledger.Day) {
	d := e.Day()
	delete(f.claims, dayID{d, e.ID})
	if f.perDay[d]--; f.perDay[d] <= 0 {
		delete(f.perDay, d)
		delete(f.reserved, d)
		return
	}
	if counted {
		return // stored has grown by what reserved already held
	}
	c := stored(d)
	for k, cl := range f.claims {
		if k.day == d {
			_ = c.CountEvent(cl.e) // fitted when it was claimed
		}
	}
	f.reserved[d] = c
}
