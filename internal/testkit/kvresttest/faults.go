package kvresttest

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"time"
)

// FaultKind is a kind of injected fault.
type FaultKind int

// Fault kinds.
const (
	// None serves the request normally.
	None FaultKind = iota
	// FailBefore answers 503 with {"error"} without running the commands.
	FailBefore
	// FailAfter runs the commands, then answers 502 with {"error"}: the
	// reply is lost.
	FailAfter
	// Reject answers 400 {"error":"ERR injected rejection"} without
	// running the commands.
	Reject
	// Delay waits Fault.Delay (DefaultDelay when 0) before serving the
	// request normally; the commands run even when the client has given up
	// by then.
	Delay
	// DropBefore resets the connection without running the commands.
	DropBefore
	// DropAfter runs the commands, then resets the connection: the reply
	// is lost.
	DropAfter
)

var kindNames = [...]string{"none", "fail-before", "fail-after", "reject", "delay", "drop-before", "drop-after"}

// String returns the kind's name.
func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Fault is one injected fault.
type Fault struct {
	Kind FaultKind
	// Delay is how long a Delay fault waits.
	Delay time.Duration
}

// RandomFaults give each authorized, well-formed request a chance of a
// fault. The shares are probabilities that add up to at most 1.
type RandomFaults struct {
	FailBefore, FailAfter, Delay, DropBefore, DropAfter float64
	// DelayFor is how long a Delay fault waits; DefaultDelay when 0.
	DelayFor time.Duration
	// Seed makes the sequence of faults repeatable.
	Seed uint64
}

// Inject queues faults for the next authorized, well-formed requests, one
// each, in order; they take precedence over random faults.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	s.queue = append(s.queue, faults...)
	s.mu.Unlock()
}

// ClearFaults drops the injected faults not used yet and turns random
// faults off.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.queue = nil
	s.random, s.rng = RandomFaults{}, nil
	s.mu.Unlock()
}

// Pending returns how many injected faults have not been used yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// SetRandomFaults sets the share of requests that get each fault (the zero
// value turns random faults off). It panics when the shares are negative
// or add up to more than 1.
func (s *Server) SetRandomFaults(r RandomFaults) {
	sum := r.FailBefore + r.FailAfter + r.Delay + r.DropBefore + r.DropAfter
	if r.FailBefore < 0 || r.FailAfter < 0 || r.Delay < 0 || r.DropBefore < 0 || r.DropAfter < 0 || sum > 1 {
		panic("kvresttest: fault shares must be ≥ 0 and add up to at most 1")
	}
	s.mu.Lock()
	s.random = r
	s.rng = mrand.New(mrand.NewPCG(r.Seed, r.Seed^0x9e3779b97f4a7c15))
	s.mu.Unlock()
}

// nextFault picks the fault for one request.
func (s *Server) nextFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		return f
	}
	r := s.random
	if s.rng == nil {
		return Fault{}
	}
	x := s.rng.Float64()
	for _, c := range []struct {
		share float64
		kind  FaultKind
	}{{r.FailBefore, FailBefore}, {r.FailAfter, FailAfter}, {r.Delay, Delay}, {r.DropBefore, DropBefore}, {r.DropAfter, DropAfter}} {
		if x < c.share {
			return Fault{Kind: c.kind, Delay: r.DelayFor}
		}
		x -= c.share
	}
	return Fault{}
}

// drop hijacks the connection and resets it (SO_LINGER 0), so the client
// sees a connection reset and no answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("kvresttest: the connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic("kvresttest: hijack: " + err.Error())
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
