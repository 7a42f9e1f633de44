package redis

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// builtCalls returns the commands Core.Add sends for evs.
func builtCalls(t *testing.T, evs []tokenledger.Event) [][]any {
	t.Helper()
	var sent [][]any
	c := newCore(t, doerFunc(func(cmds [][]any) ([]any, error) {
		sent = append(sent, cmds...)
		out := make([]any, len(cmds))
		for i, cmd := range cmds {
			out[i] = make([]any, addEvents(cmd))
			for j := range out[i].([]any) {
				out[i].([]any)[j] = int64(1)
			}
		}
		return out, nil
	}))
	if _, err := c.Add(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	return sent
}

// TestMergeAdd: calls of one day (and expiry) share a group and merge into
// the call Core would have built for all their events together; calls of
// other days, other prefixes and other commands do not group with them.
func TestMergeAdd(t *testing.T) {
	ev := func(id string, ts time.Time, user string) tokenledger.Event {
		return tokenledger.Event{ID: id, Timestamp: ts, Model: "m", UserID: user, SessionID: "s", PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5, Cost: 9}
	}
	a := ev("a", fixedNow, "u1")
	b := ev("b", fixedNow.Add(time.Hour), "")
	c := ev("c", fixedNow, "u2")
	y := ev("y", fixedNow.AddDate(0, 0, -1), "u1")
	ca, cb, cc := builtCalls(t, []tokenledger.Event{a})[0], builtCalls(t, []tokenledger.Event{b, c})[0], builtCalls(t, []tokenledger.Event{c})[0]
	cy := builtCalls(t, []tokenledger.Event{y})[0]
	ga, na, ok := AddCall(ca)
	if !ok || na != 1 {
		t.Fatalf("AddCall(%v) = %v, %d, %v", ca, ga, na, ok)
	}
	gb, nb, ok := AddCall(cb)
	if !ok || nb != 2 || gb != ga {
		t.Fatalf("AddCall of the same day: %v, %d, %v; want group %v, 2 events", gb, nb, ok, ga)
	}
	if gy, _, ok := AddCall(cy); !ok || gy == ga {
		t.Errorf("yesterday's call groups with today's (%v, %v)", gy, ok)
	}
	merged := MergeAdd([][]any{ca, cb, cc})
	want := builtCalls(t, []tokenledger.Event{a, b, c, c})[0]
	if !reflect.DeepEqual(merged, want) {
		t.Errorf("merged call\n%v\nwant the call of all four events\n%v", merged, want)
	}
	if g, n, ok := AddCall(merged); !ok || n != 4 || g != ga {
		t.Errorf("AddCall(merged) = %v, %d, %v", g, n, ok)
	}
	// The EVAL form (after NOSCRIPT) groups only with itself.
	ea := slices.Clone(ca)
	ea[0], ea[1] = "EVAL", AddScript()
	if ge, n, ok := AddCall(ea); !ok || n != 1 || ge == ga {
		t.Errorf("AddCall(EVAL) = %v, %d, %v", ge, n, ok)
	}
	// Another prefix is another group.
	other, err := New(Config{Doer: doerFunc(func(cmds [][]any) ([]any, error) { return []any{[]any{int64(1)}}, nil }), Prefix: "tl2", Now: func() time.Time { return fixedNow }, Server: "x"})
	if err != nil {
		t.Fatal(err)
	}
	calls, err := other.buildCalls([]tokenledger.Event{a})
	if err != nil {
		t.Fatal(err)
	}
	if g, _, ok := AddCall(calls[0].cmd); !ok || g == ga {
		t.Errorf("another prefix's call groups with ours (%v)", ok)
	}
	// Not add calls.
	for _, cmd := range [][]any{
		{"HGETALL", "k"},
		append([]any{"EVALSHA", "0123"}, ca[2:]...),
		append([]any{"EVAL", "return 1"}, ca[2:]...),
		ca[:len(ca)-1],
		append(slices.Clone(ca[:3]), ca[4:]...),
		append(append([]any{}, ca[:3+DayKeys+KeysPerEvent]...), append([]any{"exp"}, ca[3+DayKeys+KeysPerEvent+1:]...)...),
		append(slices.Clone(ca[:2]), append([]any{fmt.Sprint(DayKeys + 1)}, ca[3:]...)...),                                   // odd keys: v6's count
		append(append([]any{"EVALSHA", ca[1], fmt.Sprint(DayKeys + 1)}, ca[3:3+DayKeys+1]...), ca[3+DayKeys+2:len(ca)-1]...), // v6's shape
	} {
		if _, _, ok := AddCall(cmd); ok {
			t.Errorf("AddCall(%.80v) accepted", cmd)
		}
	}
}

// TestSplitAddReply: each part gets its own events' values; an error reply
// goes to every part; a reply of the wrong shape is an error for all.
func TestSplitAddReply(t *testing.T) {
	r := []any{int64(1), int64(0), int64(1), int64(1)}
	for _, c := range []struct {
		from, n int
		want    any
	}{{0, 1, []any{int64(1)}}, {1, 2, []any{int64(0), int64(1)}}, {3, 1, []any{int64(1)}}} {
		got, err := SplitAddReply(r, 4, c.from, c.n)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitAddReply(%d, %d) = %v, %v; want %v", c.from, c.n, got, err, c.want)
		}
	}
	if got, _ := SplitAddReply(r, 4, 0, 1); cap(got.([]any)) != 1 {
		t.Error("a part's reply may be appended into the next part's")
	}
	e := ReplyError("WRONGTYPE tokenledger key x holds a string, not a set")
	if got, err := SplitAddReply(e, 4, 1, 2); err != nil || got != e {
		t.Errorf("error reply: %v, %v", got, err)
	}
	for _, bad := range []any{[]any{int64(1)}, "OK", int64(1), nil} {
		if _, err := SplitAddReply(bad, 2, 0, 1); err == nil {
			t.Errorf("SplitAddReply(%v) accepted", bad)
		}
	}
}
