package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// settle sends every request that got no clear answer again, round after
// round, until each of its events is acknowledged or ctx ends: a correct
// service counts an event once however often it was sent.
func (r *runner) settle(ctx context.Context) {
	for round := 0; ctx.Err() == nil; round++ {
		reqs := r.ledger.pending()
		if len(reqs) == 0 {
			return
		}
		for i, req := range reqs {
			r.ledger.sent(req, nil, r.send(ctx, (round+i)%len(r.urls), req))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// drained waits until every instance's spool is empty and its database
// check passes (GET /api/test).
func (r *runner) drained(ctx context.Context) error {
	for i := range r.urls {
		var last string
		for {
			status, raw, err := r.get(ctx, i, "/api/test")
			var t struct {
				Status   string `json:"status"`
				Fallback struct {
					Active        bool `json:"active"`
					PendingEvents int  `json:"pendingEvents"`
				} `json:"fallback"`
			}
			if err == nil && status == 200 && json.Unmarshal(raw, &t) == nil && t.Status == "ok" && !t.Fallback.Active && t.Fallback.PendingEvents == 0 {
				break
			}
			last = fmt.Sprintf("%d %s %v", status, oneLine(raw), err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("instance %d's spool did not drain: /api/test answered %s", i, last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// bucket is the expectation for one user or model on one day: requests
// and tokens that must be counted, plus requests that may or may not be
// (the proxied calls a kill may have cut, events never acknowledged).
type bucket struct {
	requests, tokens, maybe int64
}

// counted is what an instance reports for one user or model on one day.
type counted struct {
	UserID       string `json:"userId"`
	Model        string `json:"model"`
	TotalTokens  int64  `json:"totalTokens"`
	RequestCount int64  `json:"requestCount"`
}

// verify compares each day's per-user and per-model totals, as both
// instances report them, with the ledger, and fills rep.
func (r *runner) verify(ctx context.Context, rep *Report) error {
	l := r.ledger
	l.mu.Lock()
	users, models := map[string]*bucket{}, map[string]*bucket{}
	days := map[string]bool{}
	add := func(day, user, model string, tokens int64, sure bool) {
		days[day] = true
		for _, b := range []struct {
			m   map[string]*bucket
			key string
		}{{users, day + " user " + user}, {models, day + " model " + model}} {
			x := b.m[b.key]
			if x == nil {
				x = &bucket{}
				b.m[b.key] = x
			}
			if sure {
				x.requests++
				x.tokens += tokens
			} else {
				x.maybe++
			}
		}
	}
	for _, e := range l.events {
		add(e.day, e.user, e.model, e.tokens, e.acked)
		if e.acked {
			rep.Acked++
		} else {
			rep.Unsettled++
		}
	}
	for _, p := range l.proxied {
		// The recording follows the answer's last byte by at most the
		// database timeout and a spool fsync; 10 s is a wide margin.
		cut := l.killed(p.instance, p.start, p.end.Add(10*time.Second))
		if p.answered {
			rep.Proxied++
			if cut {
				rep.Unsure++
			}
		}
		add(p.day, p.user, p.model, p.tokens, p.answered && !cut)
	}
	rep.Resent, rep.Reads, rep.ContractBreaches = l.resent, l.reads, append([]string(nil), l.errors...)
	l.mu.Unlock()

	var sorted []string
	for d := range days {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	gotUsers, gotModels := map[string]counted{}, map[string]counted{}
	for i := range r.urls {
		for _, d := range sorted {
			for _, kind := range []string{"users", "models"} {
				status, raw, err := r.get(ctx, i, fmt.Sprintf("/api/tokens?action=%s&since=%s&until=%s", kind, d, d))
				if err != nil || status != 200 {
					return fmt.Errorf("instance %d: GET action=%s for %s: %d %s %v", i, kind, d, status, oneLine(raw), err)
				}
				var ans struct{ Users, Models []counted }
				if err := json.Unmarshal(raw, &ans); err != nil {
					return fmt.Errorf("instance %d: action=%s: %v", i, kind, err)
				}
				for _, c := range append(ans.Users, ans.Models...) {
					key, into := d+" user "+c.UserID, gotUsers
					if c.Model != "" {
						key, into = d+" model "+c.Model, gotModels
					}
					if prev, ok := into[key]; i > 0 && (!ok || prev != c) {
						rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: instance 0 reads %+v, instance %d %+v", key, prev, i, c))
					}
					into[key] = c
				}
			}
		}
	}
	lostU, doubledU := compare(users, gotUsers, rep)
	lostM, doubledM := compare(models, gotModels, rep)
	rep.Lost, rep.Doubled = max(lostU, lostM), max(doubledU, doubledM)
	return nil
}

// compare counts the requests missing from and beyond each bucket's
// range, and notes every bucket that is off, tokens included.
func compare(want map[string]*bucket, got map[string]counted, rep *Report) (lost, doubled int64) {
	for key, c := range got {
		if _, ok := want[key]; !ok {
			doubled += c.RequestCount
			rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: %d requests counted, none sent", key, c.RequestCount))
		}
	}
	for key, b := range want {
		c := got[key]
		switch {
		case c.RequestCount < b.requests:
			lost += b.requests - c.RequestCount
		case c.RequestCount > b.requests+b.maybe:
			doubled += c.RequestCount - b.requests - b.maybe
		case b.maybe == 0 && c.TotalTokens == b.tokens:
			continue
		case b.maybe == 0:
		default:
			continue // within the range; the tokens of the uncertain ones are unknown
		}
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: %d requests and %d tokens counted, want %d (+ up to %d) requests and %d tokens", key, c.RequestCount, c.TotalTokens, b.requests, b.maybe, b.tokens))
	}
	sort.Strings(rep.Mismatches)
	return lost, doubled
}
