package dayagg

import (
	"maps"
	"slices"

	"github.com/tokenledger/tokenledger"
)

// Seal packs the ids counted since the last Seal, day by day, and returns
// them: the file store writes them to an index when it checkpoints.
func (s *Set) Seal() map[tokenledger.Date]IDs {
	out := map[tokenledger.Date]IDs{}
	for date, d := range s.days {
		if len(d.ids) == 0 {
			continue
		}
		p := BuildIDs(slices.Collect(maps.Keys(d.ids)))
		d.sealed = append(d.sealed, p)
		d.ids = map[string]struct{}{}
		out[date] = p
	}
	return out
}

// AddSealed adds ids, read back from an index, to date's counted ids; the
// day's aggregates come from Restore.
func (s *Set) AddSealed(date tokenledger.Date, ids IDs) {
	d := s.day(date)
	d.sealed = append(d.sealed, ids)
}

// State is one day's aggregates as a snapshot holds them: the counters
// with the per-model totals, the per-user totals and the sessions seen.
type State struct {
	Day      tokenledger.Day
	Users    map[string]tokenledger.Totals
	Sessions []string
}

// Export returns a copy of every day's State, oldest first.
func (s *Set) Export() []State {
	return s.ExportChanged(func(tokenledger.Date) bool { return true })
}

// ExportChanged returns a copy of the State of each day that counted an
// event since the last ClearChanged or for which also says so, oldest
// first: the file store rewrites only those days at a checkpoint.
func (s *Set) ExportChanged(also func(tokenledger.Date) bool) []State {
	var out []State
	for date, d := range s.days {
		if d.changed || also(date) {
			out = append(out, State{Day: d.agg.Clone(), Users: maps.Clone(d.users), Sessions: slices.Collect(maps.Keys(d.sessions))})
		}
	}
	slices.SortFunc(out, func(a, b State) int {
		switch {
		case a.Day.Date < b.Day.Date:
			return -1
		case a.Day.Date > b.Day.Date:
			return 1
		}
		return 0
	})
	return out
}

// ClearChanged marks every day as unchanged, once its State is stored.
func (s *Set) ClearChanged() {
	for _, d := range s.days {
		d.changed = false
	}
}

// Restore sets a day's aggregates from a snapshot, keeping its ids. The
// unique user and session counts follow the sets.
func (s *Set) Restore(st State) {
	d := s.day(st.Day.Date)
	d.agg = st.Day.Clone()
	d.agg.Users = nil
	if d.agg.Models == nil {
		d.agg.Models = map[string]tokenledger.Totals{}
	}
	d.users = maps.Clone(st.Users)
	if d.users == nil {
		d.users = map[string]tokenledger.Totals{}
	}
	d.sessions = make(map[string]struct{}, len(st.Sessions))
	for _, id := range st.Sessions {
		d.sessions[id] = struct{}{}
	}
	d.agg.UniqueUsers = int64(len(d.users))
	d.agg.UniqueSessions = int64(len(d.sessions))
}
