// Package dayagg holds the daily aggregates the in-process stores keep
// (memstore, and the file store's working state): per day the counters,
// the per-model and per-user totals, and the sets that make them exact
// (event ids, users, sessions). A Set is not safe for concurrent use; its
// owner locks.
package dayagg

import (
	"maps"
	"sort"

	"github.com/tokenledger/tokenledger"
)

// day is one day's aggregates plus the sets that make it exact. Its ids
// are those counted since the last Seal, in a map, and the sealed ones,
// packed.
type day struct {
	agg      tokenledger.Day
	ids      map[string]struct{}
	sealed   []IDs
	users    map[string]tokenledger.Totals
	sessions map[string]struct{}
	// changed is set when an event counts, and cleared by ClearChanged.
	changed bool
}

// has reports whether d counted id.
func (d *day) has(id string) bool {
	if _, ok := d.ids[id]; ok {
		return true
	}
	for i := range d.sealed {
		if d.sealed[i].Has(id) {
			return true
		}
	}
	return false
}

// Set is the aggregates of a set of days.
type Set struct {
	days map[tokenledger.Date]*day
}

// New returns an empty Set.
func New() *Set { return &Set{days: map[tokenledger.Date]*day{}} }

// Has reports whether id has been counted on date.
func (s *Set) Has(date tokenledger.Date, id string) bool {
	d := s.days[date]
	return d != nil && d.has(id)
}

// CheckRoom returns a *tokenledger.CounterOverflowError when counting the
// events of events that are new (each (day, id) at its first place only)
// would take a counter of their day to tokenledger.MaxCounter. A model's
// or user's totals are sums of part of the day's events, none negative,
// so they stay below the day's.
func (s *Set) CheckRoom(events []tokenledger.Event) error {
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
		if s.Has(date, e.ID) {
			continue
		}
		if scratch == nil {
			scratch = map[tokenledger.Date]*tokenledger.Day{}
			fresh = map[key]struct{}{}
		}
		k := key{date, e.ID}
		if _, dup := fresh[k]; dup {
			continue
		}
		fresh[k] = struct{}{}
		if err := s.Room(scratch, e); err != nil {
			return err
		}
	}
	return nil
}

// Room counts e in scratch[e's date], first copying that day's stored
// day-level counters there when scratch has no entry for it yet, and
// returns the error of a counter that would reach tokenledger.MaxCounter
// (leaving scratch unchanged).
func (s *Set) Room(scratch map[tokenledger.Date]*tokenledger.Day, e *tokenledger.Event) error {
	date := e.Day()
	c := scratch[date]
	if c == nil {
		c = s.Counters(date)
		scratch[date] = c
	}
	return c.CountEvent(e)
}

// Counters returns a copy of date's day-level counters (no Models, Users).
func (s *Set) Counters(date tokenledger.Date) *tokenledger.Day {
	c := &tokenledger.Day{Date: date}
	if d := s.days[date]; d != nil {
		*c = d.agg
		c.Models, c.Users = nil, nil
	}
	return c
}

// Apply counts e unless its id was counted on its day already, and
// reports whether it counted it. It does not check for overflow.
func (s *Set) Apply(e *tokenledger.Event) bool {
	d := s.day(e.Day())
	if d.has(e.ID) {
		return false
	}
	d.ids[e.ID] = struct{}{}
	d.changed = true
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

// day returns the day of date, made empty when missing.
func (s *Set) day(date tokenledger.Date) *day {
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
	return d
}

// Days returns copies of the days in [q.From, q.To], oldest first, with
// their users' totals when q.Users is set.
func (s *Set) Days(q tokenledger.DayQuery) []tokenledger.Day {
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
	return out
}

// Reset forgets every day.
func (s *Set) Reset() { s.days = map[tokenledger.Date]*day{} }

// Prune drops the days before oldest and returns how many it dropped.
func (s *Set) Prune(oldest tokenledger.Date) int {
	n := 0
	for date := range s.days {
		if date < oldest {
			delete(s.days, date)
			n++
		}
	}
	return n
}

// Events returns the number of distinct events counted.
func (s *Set) Events() int {
	n := 0
	for _, d := range s.days {
		n += len(d.ids)
		for i := range d.sealed {
			n += d.sealed[i].Len()
		}
	}
	return n
}
