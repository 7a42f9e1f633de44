package tokenledger

import "sort"

// Stats summarises the retained window.
type Stats struct {
	TotalTokensAllTime  int64 `json:"totalTokensAllTime"`
	TotalRequests       int64 `json:"totalRequests"`
	AvgTokensPerRequest int64 `json:"avgTokensPerRequest"`
	// MostActiveDate is the date with the most totalTokens (the later date
	// on a tie), nil when nothing is stored.
	MostActiveDate *Date `json:"mostActiveDate"`
	// DaysTracked counts dates with at least one request.
	DaysTracked int     `json:"daysTracked"`
	TotalCost   Nanos   `json:"totalCostUsd"`
	FirstDate   *Date   `json:"firstDate"`
	LastDate    *Date   `json:"lastDate"`
	TopModel    *string `json:"topModel"`
}

// NamedTotals are the totals of one model or one user over a window.
type NamedTotals struct {
	// Name is the model name or the userId.
	Name string `json:"-"`
	Totals
}

// ModelTotals is one row of the models report.
type ModelTotals struct {
	Model string `json:"model"`
	Totals
}

// UserTotals is one row of the users report.
type UserTotals struct {
	UserID string `json:"userId"`
	Totals
}

// History returns n days ending with today, oldest first, taking each from
// days when present and zero-filling the rest. days may be in any order and
// may hold dates outside the range.
func History(days []Day, today Date, n int) []Day {
	byDate := make(map[Date]Day, len(days))
	for _, d := range days {
		byDate[d.Date] = d
	}
	out := make([]Day, n)
	for i := range n {
		date := today.AddDays(i - n + 1)
		if d, ok := byDate[date]; ok && d.RequestCount > 0 {
			out[i] = d
			if out[i].Models == nil {
				out[i].Models = map[string]Totals{}
			}
		} else {
			out[i] = EmptyDay(date)
		}
	}
	return out
}

// Find returns the day for date from days, or nil when it holds no usage.
func Find(days []Day, date Date) *Day {
	for i := range days {
		if days[i].Date == date && days[i].RequestCount > 0 {
			d := days[i]
			if d.Models == nil {
				d.Models = map[string]Totals{}
			}
			return &d
		}
	}
	return nil
}

// ComputeStats summarises days, which should be the retained window.
func ComputeStats(days []Day) Stats {
	var s Stats
	var best Day
	for _, d := range days {
		if d.RequestCount == 0 {
			continue
		}
		s.TotalTokensAllTime += d.TotalTokens
		s.TotalRequests += d.RequestCount
		s.TotalCost += d.Cost
		s.DaysTracked++
		if s.FirstDate == nil || d.Date < *s.FirstDate {
			s.FirstDate = ptr(d.Date)
		}
		if s.LastDate == nil || d.Date > *s.LastDate {
			s.LastDate = ptr(d.Date)
		}
		if s.MostActiveDate == nil || d.TotalTokens > best.TotalTokens ||
			(d.TotalTokens == best.TotalTokens && d.Date > best.Date) {
			best = d
			s.MostActiveDate = ptr(d.Date)
		}
	}
	if s.TotalRequests > 0 {
		s.AvgTokensPerRequest = (2*s.TotalTokensAllTime + s.TotalRequests) / (2 * s.TotalRequests)
	}
	if top := sortTotals(modelSums(days)); len(top) > 0 {
		s.TopModel = ptr(top[0].Name)
	}
	return s
}

// Models returns per-model totals over days, largest totalTokens first
// (ties by name).
func Models(days []Day) []ModelTotals {
	rows := sortTotals(modelSums(days))
	out := make([]ModelTotals, len(rows))
	for i, r := range rows {
		out[i] = ModelTotals{Model: r.Name, Totals: r.Totals}
	}
	return out
}

// Users returns per-user totals over days, largest totalTokens first (ties
// by userId). The days must have been read with DayQuery.Users.
func Users(days []Day) []UserTotals {
	sums := map[string]Totals{}
	for _, d := range days {
		for name, t := range d.Users {
			s := sums[name]
			s.Add(t)
			sums[name] = s
		}
	}
	rows := sortTotals(sums)
	out := make([]UserTotals, len(rows))
	for i, r := range rows {
		out[i] = UserTotals{UserID: r.Name, Totals: r.Totals}
	}
	return out
}

func modelSums(days []Day) map[string]Totals {
	sums := map[string]Totals{}
	for _, d := range days {
		for name, t := range d.Models {
			s := sums[name]
			s.Add(t)
			sums[name] = s
		}
	}
	return sums
}

func sortTotals(m map[string]Totals) []NamedTotals {
	rows := make([]NamedTotals, 0, len(m))
	for name, t := range m {
		rows = append(rows, NamedTotals{Name: name, Totals: t})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].TotalTokens != rows[j].TotalTokens {
			return rows[i].TotalTokens > rows[j].TotalTokens
		}
		return rows[i].Name < rows[j].Name
	})
	return rows
}

func ptr[T any](v T) *T { return &v }
