// Package memstore is the reference tokenledger.Store: daily aggregates in
// memory (store/internal/dayagg), exact and idempotent, lost when the
// process ends.
package memstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
)

var _ tokenledger.Store = (*Store)(nil)

// Store is an in-memory Store.
type Store struct {
	mu        sync.RWMutex
	days      *dayagg.Set
	closed    bool
	now       tokenledger.Clock
	retention int
}

// New returns an empty Store. With now and retentionDays set (non-nil,
// non-zero), Prune drops days older than today − retentionDays; otherwise
// days are kept until Reset.
func New(now tokenledger.Clock, retentionDays int) *Store {
	return &Store{days: dayagg.New(), now: now, retention: retentionDays}
}

// Add counts each event whose ID is new within its day. It fails when ctx
// has ended, when the store is closed, or with a
// *tokenledger.CounterOverflowError when the new events would take a
// counter of a day to tokenledger.MaxCounter, and then counts nothing.
func (s *Store) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	events := batch.Events()
	if err := ctx.Err(); err != nil {
		return tokenledger.AddResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return tokenledger.AddResult{}, tokenledger.ErrClosed
	}
	if err := s.days.CheckRoom(events); err != nil {
		return tokenledger.AddResult{}, fmt.Errorf("add to memory store: %w", err)
	}
	res := tokenledger.AddResult{New: make([]bool, len(events))}
	for i := range events {
		res.New[i] = s.days.Apply(&events[i])
	}
	return res, nil
}

// Days returns copies of the stored days in [q.From, q.To], oldest first.
// It fails only when ctx has ended or the store is closed.
func (s *Store) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, tokenledger.ErrClosed
	}
	return s.days.Days(q), nil
}

// Reset deletes every day. It fails only when ctx has ended or the store
// is closed.
func (s *Store) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return tokenledger.ErrClosed
	}
	s.days.Reset()
	return nil
}

// Prune drops days older than today − retention and returns how many it
// dropped. It does nothing when the Store was made without a clock.
func (s *Store) Prune() int {
	if s.now == nil || s.retention <= 0 {
		return 0
	}
	oldest := tokenledger.DateOf(s.now()).AddDays(-s.retention)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.days.Prune(oldest)
}

// Events returns the number of distinct events held.
func (s *Store) Events() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.days.Events()
}

// Check returns nil unless the store is closed or ctx has ended: memory
// has nothing else that can fail.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return tokenledger.ErrClosed
	}
	return nil
}

// Close discards the data. It always returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.days = dayagg.New()
	return nil
}

// Info describes the store.
func (s *Store) Info() tokenledger.StoreInfo {
	return tokenledger.StoreInfo{Kind: "memory", Location: "process memory"}
}
