package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenledger/tokenledger"
)

// storeOps are the Store methods that are timed, by op label.
var storeOps = []string{"add", "days", "reset", "check"}

// opObservers are one store's per-op histogram and error counter, looked
// up once so that a call costs no label hashing.
type opObservers struct {
	took   prometheus.Observer
	failed prometheus.Counter
}

// Store wraps st so that each Add, Days, Reset and Check is timed in
// tokenledger_store_operation_duration_seconds{store,op} and each failure
// counted in tokenledger_store_errors_total{store,op}; store is the kind
// st describes itself as. Wrap the backend itself (the file or the
// database, under the spool) so that an outage the spool hides still shows.
// The wrapper is an Unwrapper: tokenledger.FindStore reaches st's optional
// interfaces through it.
func (m *Metrics) Store(st tokenledger.Store) tokenledger.Store {
	kind := "unknown"
	if d, ok := tokenledger.FindStore[tokenledger.Describer](st); ok {
		kind = d.Info().Kind
	}
	o := &observedStore{Store: st, ops: map[string]opObservers{}}
	for _, op := range storeOps {
		o.ops[op] = opObservers{took: m.storeDur.WithLabelValues(kind, op), failed: m.storeErr.WithLabelValues(kind, op)}
	}
	return o
}

// observedStore is a Store whose calls are measured.
type observedStore struct {
	tokenledger.Store
	ops map[string]opObservers
}

// Unwrap returns the measured store.
func (s *observedStore) Unwrap() tokenledger.Store { return s.Store }

// Info describes the measured store.
func (s *observedStore) Info() tokenledger.StoreInfo {
	if d, ok := s.Store.(tokenledger.Describer); ok {
		return d.Info()
	}
	return tokenledger.StoreInfo{Kind: "unknown"}
}

// done records one call of op that started at start and ended with err. A
// caller that went away (context.Canceled) is not the store's failure.
func (s *observedStore) done(op string, start time.Time, err error) {
	o := s.ops[op]
	o.took.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, context.Canceled) {
		o.failed.Inc()
	}
}

func (s *observedStore) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	start := time.Now()
	res, err := s.Store.Add(ctx, batch)
	s.done("add", start, err)
	return res, err
}

func (s *observedStore) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	start := time.Now()
	days, err := s.Store.Days(ctx, q)
	s.done("days", start, err)
	return days, err
}

func (s *observedStore) Reset(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Reset(ctx)
	s.done("reset", start, err)
	return err
}

func (s *observedStore) Check(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Check(ctx)
	s.done("check", start, err)
	return err
}
