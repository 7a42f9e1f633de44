package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	tlredis "github.com/tokenledger/tokenledger/store/redis"
)

// ledger is what a set of events must add up to, computed here
// independently of the code under test.
type ledger struct {
	days map[tokenledger.Date]*dayWant
}

type dayWant struct {
	day      tokenledger.Day
	users    map[string]tokenledger.Totals
	userSet  map[string]bool
	sessions map[string]bool
}

func newLedger(sets ...[]event) *ledger {
	l := &ledger{days: map[tokenledger.Date]*dayWant{}}
	for _, s := range sets {
		for _, e := range s {
			l.add(e)
		}
	}
	return l
}

func (l *ledger) add(e event) {
	d := l.days[e.date()]
	if d == nil {
		d = &dayWant{day: tokenledger.Day{Date: e.date(), Models: map[string]tokenledger.Totals{}},
			users: map[string]tokenledger.Totals{}, userSet: map[string]bool{}, sessions: map[string]bool{}}
		l.days[e.date()] = d
	}
	t := tokenledger.Totals{PromptTokens: e.Prompt, CompletionTokens: e.Complete, TotalTokens: e.total(), RequestCount: 1, Cost: e.Cost}
	// An event sent with its cost is priced by the client; the others'
	// models ("model-N") are in no price table.
	src := tokenledger.Unpriced
	if e.Cost > 0 {
		src = tokenledger.PricedByClient
	}
	t.Pricing.Count(src)
	d.day.Pricing.Count(src)
	d.day.PromptTokens += e.Prompt
	d.day.CompletionTokens += e.Complete
	d.day.TotalTokens += e.total()
	d.day.RequestCount++
	d.day.CacheReadTokens += e.CacheRead
	d.day.Cost += e.Cost
	m := d.day.Models[e.Model]
	m.Add(t)
	d.day.Models[e.Model] = m
	if e.User != "" {
		u := d.users[e.User]
		u.Add(t)
		d.users[e.User] = u
		d.userSet[e.User] = true
	}
	if e.Session != "" {
		d.sessions[e.Session] = true
	}
	d.day.UniqueUsers, d.day.UniqueSessions = int64(len(d.userSet)), int64(len(d.sessions))
}

// requests returns how many events the ledger holds.
func (l *ledger) requests() int64 {
	var n int64
	for _, d := range l.days {
		n += d.day.RequestCount
	}
	return n
}

// snapshot is what a tokenledger answers for a window of days: action=all,
// action=models and action=users, without the timestamps.
type snapshot struct {
	All struct {
		TodayUsage *tokenledger.Day  `json:"todayUsage"`
		History    []tokenledger.Day `json:"history"`
		Stats      tokenledger.Stats `json:"stats"`
	}
	Models []tokenledger.ModelTotals
	Users  []tokenledger.UserTotals
	// Raw holds the three answers without "timestamp", to compare
	// instances byte for byte.
	Raw [3]string
}

// getReport is getJSON for a report, which a busy machine may answer 503
// for a moment (the database did not answer within the timeout, or a
// spooled event is still being delivered): it tries again for up to 30 s.
func getReport(t testing.TB, url string, v any) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, raw := get(t, url)
		if status == 200 {
			if err := json.Unmarshal(raw, v); err != nil {
				t.Fatalf("GET %s: %v\n%s", url, err, raw)
			}
			return raw
		}
		if status != 503 || time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s", url, status, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// read takes a snapshot of the last `days` days through url.
func read(t testing.TB, url string, days int) snapshot {
	t.Helper()
	var s snapshot
	var models struct {
		Models []tokenledger.ModelTotals `json:"models"`
	}
	var users struct {
		Users []tokenledger.UserTotals `json:"users"`
	}
	for i, q := range []struct {
		action string
		v      any
	}{{"all", &s.All}, {"models", &models}, {"users", &users}} {
		raw := getReport(t, fmt.Sprintf("%s/api/tokens?action=%s&days=%d", url, q.action, days), q.v)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "timestamp")
		b, _ := json.Marshal(m)
		s.Raw[i] = string(b)
	}
	s.Models, s.Users = models.Models, users.Users
	return s
}

// check compares a snapshot with what the ledger's events must produce,
// exactly: every day of the window (totals, unique counts, per-model
// totals), stats, the models report and the users report.
func (l *ledger) check(t testing.TB, s snapshot) {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	inWindow := map[tokenledger.Date]bool{}
	for _, got := range s.All.History {
		inWindow[got.Date] = true
		want := tokenledger.EmptyDay(got.Date)
		if d := l.days[got.Date]; d != nil {
			want = d.day
		}
		if !sameDay(got, want) {
			bad("day %s:\n   got %s\n  want %s", got.Date, dayString(got), dayString(want))
		}
	}
	for date := range l.days {
		if !inWindow[date] {
			bad("day %s holds events but is not in the history of %d days", date, len(s.All.History))
		}
	}

	var want tokenledger.Stats
	modelSums, userSums := map[string]tokenledger.Totals{}, map[string]tokenledger.Totals{}
	var best tokenledger.Day
	for _, d := range l.days {
		want.TotalTokensAllTime += d.day.TotalTokens
		want.TotalRequests += d.day.RequestCount
		want.TotalCost += d.day.Cost
		want.Pricing.Add(d.day.Pricing)
		want.DaysTracked++
		if want.MostActiveDate == nil || d.day.TotalTokens > best.TotalTokens ||
			(d.day.TotalTokens == best.TotalTokens && d.day.Date > best.Date) {
			best = d.day
			want.MostActiveDate = &best.Date
		}
		for name, t := range d.day.Models {
			m := modelSums[name]
			m.Add(t)
			modelSums[name] = m
		}
		for name, t := range d.users {
			u := userSums[name]
			u.Add(t)
			userSums[name] = u
		}
	}
	if want.TotalRequests > 0 {
		want.AvgTokensPerRequest = (2*want.TotalTokensAllTime + want.TotalRequests) / (2 * want.TotalRequests)
	}
	got := s.All.Stats
	if got.TotalTokensAllTime != want.TotalTokensAllTime || got.TotalRequests != want.TotalRequests ||
		got.AvgTokensPerRequest != want.AvgTokensPerRequest || got.DaysTracked != want.DaysTracked ||
		got.TotalCost != want.TotalCost || !reflect.DeepEqual(got.MostActiveDate, want.MostActiveDate) {
		bad("stats:\n   got %+v (mostActiveDate %v)\n  want %+v (mostActiveDate %v)", got, deref(got.MostActiveDate), want, deref(want.MostActiveDate))
	}

	gotModels := map[string]tokenledger.Totals{}
	for i, m := range s.Models {
		gotModels[m.Model] = m.Totals
		if i > 0 && (m.TotalTokens > s.Models[i-1].TotalTokens ||
			m.TotalTokens == s.Models[i-1].TotalTokens && m.Model < s.Models[i-1].Model) {
			bad("models report out of order at %d (%s after %s)", i, m.Model, s.Models[i-1].Model)
		}
	}
	problems = append(problems, diffTotals("model", gotModels, modelSums)...)
	gotUsers := map[string]tokenledger.Totals{}
	for i, u := range s.Users {
		gotUsers[u.UserID] = u.Totals
		if i > 0 && (u.TotalTokens > s.Users[i-1].TotalTokens ||
			u.TotalTokens == s.Users[i-1].TotalTokens && u.UserID < s.Users[i-1].UserID) {
			bad("users report out of order at %d (%s after %s)", i, u.UserID, s.Users[i-1].UserID)
		}
	}
	problems = append(problems, diffTotals("user", gotUsers, userSums)...)
	if len(problems) > 0 {
		if len(problems) > 12 {
			problems = append(problems[:12], fmt.Sprintf("… and %d more", len(problems)-12))
		}
		t.Errorf("the totals are not exact (%d events expected):\n%s", l.requests(), strings.Join(problems, "\n"))
	}
}

// diffTotals lists the names whose totals differ between got and want.
func diffTotals(kind string, got, want map[string]tokenledger.Totals) []string {
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		g, gok := got[n]
		w, wok := want[n]
		if g != w || gok != wok {
			out = append(out, fmt.Sprintf("%s %q: got %+v (reported: %v), want %+v (expected: %v)", kind, n, g, gok, w, wok))
		}
	}
	return out
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// sameDay compares every counter of two days, models included (nil and
// empty model maps are the same).
func sameDay(a, b tokenledger.Day) bool {
	for _, d := range []*tokenledger.Day{&a, &b} {
		if d.Models == nil {
			d.Models = map[string]tokenledger.Totals{}
		}
		d.Users = nil
	}
	return reflect.DeepEqual(a, b)
}

func dayString(d tokenledger.Day) string {
	models := d.Models
	d.Models, d.Users = nil, nil
	return fmt.Sprintf("%+v models=%v", d, models)
}

// ---------------------------------------------------------------------------
// Exactly once, with unacknowledged events

// claimed reports, for each event, whether the database at db holds its
// claim (its field in its claim hash "<prefix>:{<day>}:ids:<b>", or its key
// "<prefix>:{<day>}:id:<id>", docs/redis.md "Claims"): whether it has been
// counted. It reads Redis directly, so the answer does not depend on the
// script; only the claim's name is store/redis's.
func claimed(t testing.TB, db *redistest.Instance, prefix string, events []event) []bool {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: db.Addr()})
	defer rc.Close()
	return claimedOn(t, rc, prefix, events)
}

// claimedOn is claimed on any client, such as a cluster's.
func claimedOn(t testing.TB, rc redis.UniversalClient, prefix string, events []event) []bool {
	t.Helper()
	keys, err := tlredis.NewKeys(prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bool, len(events))
	for i := 0; i < len(events); i += 1000 {
		chunk := events[i:min(i+1000, len(events))]
		olds := make([]*redis.IntCmd, len(chunk))
		fields := make([]*redis.BoolCmd, len(chunk))
		_, err := rc.Pipelined(context.Background(), func(p redis.Pipeliner) error {
			for j, e := range chunk {
				old, bucket, field := keys.Claim(e.date(), e.ID)
				olds[j] = p.Exists(context.Background(), old)
				if field != "" {
					fields[j] = p.HExists(context.Background(), bucket, field)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read claims from Redis: %v", err)
		}
		for j, c := range olds {
			out[i+j] = c.Val() == 1 || (fields[j] != nil && fields[j].Val())
		}
	}
	return out
}

// checkExactlyOnce proves that the database behind url (Redis at db, keys
// under prefix) holds every acknowledged event exactly once, and each
// unacknowledged one at most once. Call it once the spool has drained.
//
//  1. It reads what tokenledger reports (before).
//  2. It asks Redis which events are claimed: every acknowledged one must
//     be (none lost); the claimed unacknowledged ones are those a request
//     counted although its answer never arrived.
//  3. before must equal, in every total, day, model, user and unique count,
//     exactly the acknowledged events plus the claimed unacknowledged ones:
//     nothing lost, nothing counted twice, nothing stray.
//  4. It sends every unacknowledged event again, with its id, and the
//     totals must then equal all events exactly.
func checkExactlyOnce(t testing.TB, url string, db *redistest.Instance, prefix string, days int, o *outcome) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: db.Addr()})
	defer rc.Close()
	checkExactlyOnceOn(t, url, rc, prefix, days, o)
}

// checkExactlyOnceOn is checkExactlyOnce with the claims read through rc,
// such as a cluster's client.
func checkExactlyOnceOn(t testing.TB, url string, rc redis.UniversalClient, prefix string, days int, o *outcome) {
	t.Helper()
	before := read(t, url, days)

	lost := 0
	for i, ok := range claimedOn(t, rc, prefix, o.acked) {
		if !ok {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged event %s (day %s) is not in the database", o.acked[i].ID, o.acked[i].date())
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events are not in the database", lost, len(o.acked))
	}
	var countedAnyway []event
	for i, ok := range claimedOn(t, rc, prefix, o.unacked) {
		if ok {
			countedAnyway = append(countedAnyway, o.unacked[i])
		}
	}
	t.Logf("%d events acknowledged, %d not (%d of those were counted anyway)", len(o.acked), len(o.unacked), len(countedAnyway))
	newLedger(o.acked, countedAnyway).check(t, before)

	for i := 0; i < len(o.unacked); i += 1000 {
		resend(t, url, o.unacked[i:min(i+1000, len(o.unacked))])
	}
	waitDrained(t, url, 60*time.Second)
	newLedger(o.acked, o.unacked).check(t, read(t, url, days))
}

// resend posts events until they are answered 200 (a 503 is retried: the
// same ids count once), within 60 s.
func resend(t testing.TB, url string, events []event) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, a, err := post(context.Background(), url, events)
		if err == nil && status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-sending %d events: %d %+v %v", len(events), status, a, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
