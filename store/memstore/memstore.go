// Package memstore is the reference tokenledger.Store: daily aggregates in
// memory, exact and idempotent, lost when the process ends. The file store
// keeps its working state in one.
package memstore

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"

	"github.com/tokenledger/tokenledger"
)

var _ tokenledger.Store = (*Store)(nil)

// day is one day's aggregates plus the sets that make it exact.
type day struct {
	agg      tokenledger.Day
	ids      map[string]struct{}
	users    map[string]tokenledger.Totals
	sessions map[string]struct{}
}

// Store is an in-memory Store.
type Store struct {
	mu        sync.RWMutex
	days      map[tokenledger.Date]*day
	closed    bool
	now       tokenledger.Clock
	retention int
}

// New returns an empty Store. With now and retentionDays set (non-nil,
// non-zero), Prune drops days older than today − retentionDays; otherwise
// days are kept until Reset.
func New(now tokenledger.Clock, retentionDays int) *Store {
	return &Store{days: map[tokenledger.Date]*day{}, now: now, retention: retentionDays}
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
	if err := s.checkRoom(events); err != nil {
		return tokenledger.AddResult{}, fmt.Errorf("add to memory store: %w", err)
	}
	res := tokenledger.AddResult{New: make([]bool, len(events))}
	for i := range events {
		res.New[i] = s.apply(&events[i])
	}
	return res, nil
}

// checkRoom returns an error when counting the new events among events
// would take a counter of their day to tokenledger.MaxCounter. It counts
// them on scratch copies of the days' counters; s.mu is held. A model's or
// user's totals are sums of part of the day's events, none negative, so
// they stay below the day's.
func (s *Store) checkRoom(events []tokenledger.Event) error {
	type key struct {
		date tokenledger.Date
		id   string
	}
	var (
		scratch map[tokenledger.Date]*tokenledger.Day
		fresh   map[key]struct{}
	)
	for i := range events {
		e := &events[i]
		date := e.Day()
		if d := s.days[date]; d != nil {
			if _, dup := d.ids[e.ID]; dup {
				continue
			}
		}
		if scratch == nil {
			scratch = map[tokenledger.Date]*tokenledger.Day{}
			fresh = map[key]struct{}{}
		}
		k := key{date, e.ID}
		if _, dup := fresh[k]; dup {
			continue // counted at its first place in events only
		}
		fresh[k] = struct{}{}
		if err := s.room(scratch, e); err != nil {
			return err
		}
	}
	return nil
}

// room counts e in scratch[e's date], first copying that day's stored
// day-level counters there when scratch has no entry for it yet, and
// returns the error of a counter that would reach tokenledger.MaxCounter;
// s.mu is held (read or write).
func (s *Store) room(scratch map[tokenledger.Date]*tokenledger.Day, e *tokenledger.Event) error {
	date := e.Day()
	c := scratch[date]
	if c == nil {
		c = &tokenledger.Day{Date: date}
		if d := s.days[date]; d != nil {
			*c = d.agg
			c.Models, c.Users = nil, nil
		}
		scratch[date] = c
	}
	return c.CountEvent(e)
}

// CheckRoom returns an error when the day-level counters in scratch plus those
// already stored would not take e: scratch holds, per date, what a caller
// has decided to add but not yet added. When e fits, it is counted in
// scratch. The file store uses it to check each Add of a group before
// writing the group's journal line.
func (s *Store) CheckRoom(scratch map[tokenledger.Date]*tokenledger.Day, e *tokenledger.Event) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.room(scratch, e)
}

// AddChecked counts each event whose ID is new within its day, like Add,
// but without Add's overflow check: the caller has checked the events
// with CheckRoom and kept other writers out since. The file store calls it
// once the events' journal line is durable, where a second check could
// only leave memory behind the file. It counts even on a closed store.
func (s *Store) AddChecked(events []tokenledger.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range events {
		s.apply(&events[i])
	}
}

// Has reports whether the event's ID has been counted within its day.
func (s *Store) Has(e *tokenledger.Event) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.days[e.Day()]
	if d == nil {
		return false
	}
	_, ok := d.ids[e.ID]
	return ok
}

// apply adds one event unless its ID was seen that day; s.mu is held.
func (s *Store) apply(e *tokenledger.Event) bool {
	date := e.Day()
	d := s.days[date]
	if d == nil {
		d = &day{
			agg:      tokenledger.EmptyDay(date),
			ids:      map[string]struct{}{},
			users:    map[string]tokenledger.Totals{},
			sessions: map[string]struct{}{},
		}
		s.days[date] = d
	}
	if _, dup := d.ids[e.ID]; dup {
		return false
	}
	d.ids[e.ID] = struct{}{}
	d.agg.AddCounters(e)
	if e.UserID != "" {
		u := d.users[e.UserID]
		u.AddEvent(e)
		d.users[e.UserID] = u
	}
	if e.SessionID != "" {
		d.sessions[e.SessionID] = struct{}{}
	}
	d.agg.UniqueUsers = int64(len(d.users))
	d.agg.UniqueSessions = int64(len(d.sessions))
	return true
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
	var out []tokenledger.Day
	for date, d := range s.days {
		if date < q.From || date > q.To {
			continue
		}
		c := d.agg.Clone()
		if q.Users {
			c.Users = maps.Clone(d.users) // copies the table: no rehash per user
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Date < out[j].Date })
	return out, nil
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
	s.days = map[tokenledger.Date]*day{}
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
	n := 0
	for date := range s.days {
		if date < oldest {
			delete(s.days, date)
			n++
		}
	}
	return n
}

// Events returns the number of distinct events held.
func (s *Store) Events() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, d := range s.days {
		n += len(d.ids)
	}
	return n
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
	s.days = nil
	return nil
}

// Info describes the store.
func (s *Store) Info() tokenledger.StoreInfo {
	return tokenledger.StoreInfo{Kind: "memory", Location: "process memory"}
}
