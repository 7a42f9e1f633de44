package redis

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// builtCalls returns the commands Store.add sends for evs.
func builtCalls(t *testing.T, evs []tokenledger.Event) [][]any {
	t.Helper()
	var sent [][]any
	c := newCore(t, doerFunc(func(cmds [][]any) ([]any, error) {
		sent = append(sent, cmds...)
		out := make([]any, len(cmds))
		for i, cmd := range cmds {
			out[i] = make([]any, callEvents(cmd))
			for j := range out[i].([]any) {
				out[i].([]any)[j] = int64(1)
			}
		}
		return out, nil
	}))
	if _, err := c.Add(context.Background(), storetest.Batch(evs)); err != nil {
		t.Fatal(err)
	}
	return sent
}

// callEvents returns how many events a script command carries.
func callEvents(cmd []any) int {
	n, _ := strconv.Atoi(cmd[2].(string))
	return (n - DayKeys) / KeysPerEvent
}

// TestPlanMergesCallsOfOneDay: the combiner merges concurrent callers'
// calls of one day (and expiry, and script command) into the call the
// store would have built for all their events together, in order; calls
// of other days, EVAL calls (after NOSCRIPT) and calls with a claim token
// stay apart, and each caller learns where its events' replies are.
func TestPlanMergesCallsOfOneDay(t *testing.T) {
	st := newCore(t, doerFunc(func([][]any) ([]any, error) { return nil, nil }))
	ev := func(id string, ts time.Time, user string) tokenledger.Event {
		return tokenledger.Event{ID: id, Timestamp: ts, Model: "m", UserID: user, SessionID: "s", PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5, Cost: 9}
	}
	build := func(evs ...tokenledger.Event) []*call {
		t.Helper()
		return st.buildCalls(evs)
	}
	a := ev("a", fixedNow, "u1")
	b := ev("b", fixedNow.Add(time.Hour), "")
	c := ev("c", fixedNow, "u2")
	y := ev("y", fixedNow.AddDate(0, 0, -1), "u1")
	eval := build(a)[0]
	eval.eval = true
	tokened := build(b)[0]
	tokened.token = "12345"
	live := []*request{
		{calls: build(a)}, {calls: build(b, c)}, {calls: build(y)}, {calls: build(c)}, {calls: []*call{eval}}, {calls: []*call{tokened}},
	}
	cmds, wait, slots := (&combiner{merge: true}).plan(live)
	want := [][]any{build(a, b, c, c)[0].args(), build(y)[0].args(), eval.args(), tokened.args()}
	if !reflect.DeepEqual(cmds, want) {
		t.Errorf("planned\n%v\nwant\n%v", cmds, want)
	}
	if !reflect.DeepEqual(wait, []bool{true, true, true, true}) {
		t.Errorf("wait = %v, want every add call waited for", wait)
	}
	at := func(i int) slot { s := slots[i][0]; s.g = nil; return s }
	for i, w := range []slot{{at: 0, n: 1}, {at: 0, from: 1, n: 2}, {at: 1, n: 1}, {at: 0, from: 3, n: 1}, {at: 2, n: 1}, {at: 3, n: 1}} {
		if got := at(i); got != w {
			t.Errorf("caller %d's slot = %+v, want %+v", i, got, w)
		}
	}
	// Without merging every call is its own command.
	cmds, _, _ = (&combiner{}).plan([]*request{{calls: build(a)}, {calls: build(c)}})
	if !reflect.DeepEqual(cmds, [][]any{build(a)[0].args(), build(c)[0].args()}) {
		t.Errorf("without merging: %v", cmds)
	}
}

// TestSplitReply: each part gets its own events' values; an error reply
// goes to every part; a reply of the wrong shape is an error for all.
func TestSplitReply(t *testing.T) {
	r := []any{int64(1), int64(0), int64(1), int64(1)}
	for _, c := range []struct {
		from, n int
		want    any
	}{{0, 1, []any{int64(1)}}, {1, 2, []any{int64(0), int64(1)}}, {3, 1, []any{int64(1)}}} {
		got, err := splitReply(r, 4, c.from, c.n)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitReply(%d, %d) = %v, %v; want %v", c.from, c.n, got, err, c.want)
		}
	}
	if got, _ := splitReply(r, 4, 0, 1); cap(got.([]any)) != 1 {
		t.Error("a part's reply may be appended into the next part's")
	}
	e := ReplyError("WRONGTYPE tokenledger key x holds a string, not a set")
	if got, err := splitReply(e, 4, 1, 2); err != nil || got != e {
		t.Errorf("error reply: %v, %v", got, err)
	}
	if got, err := splitReply(int64(0), 4, 1, 2); err != nil || got != int64(0) {
		t.Errorf("summed reply: %v, %v", got, err) // the whole call's answer, for every part
	}
	for _, bad := range []any{[]any{int64(1)}, "OK", nil} {
		if _, err := splitReply(bad, 2, 0, 1); err == nil {
			t.Errorf("splitReply(%v) accepted", bad)
		}
	}
}
