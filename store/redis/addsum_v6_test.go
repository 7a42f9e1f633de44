package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// summedShape returns, of a summed call, whether it says it carries the
// v6 claim keys (ARGV[6]) and how many keys it has after the seven of the
// day.
func summedShape(t *testing.T, cmd []any) (string, int) {
	t.Helper()
	var numKeys int
	if _, err := fmt.Sscan(cmd[2].(string), &numKeys); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(cmd[3+numKeys+5]), numKeys - DayKeys - 2
}

// TestSummedCallsLeaveOutV6Keys: a day's summed calls leave out the v6
// claim keys until the script answers 3; then the same call goes again
// with them, in the next round trip, and so does every later call of that
// day. The script answering 3 to a call that carried them is an error.
func TestSummedCallsLeaveOutV6Keys(t *testing.T) {
	var trips [][]any // each round trip's first command
	answer := int64(3)
	c := newCore(t, doerFunc(func(cmds [][]any) ([]any, error) {
		trips = append(trips, cmds[0])
		flag, _ := summedShape(t, cmds[0])
		if flag == "0" {
			return []any{answer}, nil
		}
		return []any{int64(1)}, nil
	}))
	evs := func(n int) []tokenledger.Event {
		var out []tokenledger.Event
		for i := range n {
			out = append(out, tokenledger.Event{ID: fmt.Sprint(tokenledger.NewEventID(), i), Timestamp: fixedNow, Model: "m", TotalTokens: 1})
		}
		return out
	}
	add := func(n int) error {
		res, err := c.Add(context.Background(), storetest.Batch(evs(n)))
		if err != nil {
			return err
		}
		if want := strings.Repeat("true ", n); fmt.Sprint(res.New) != "["+strings.TrimSpace(want)+"]" {
			return fmt.Errorf("new = %v, want every event new", res.New)
		}
		return nil
	}
	if err := add(3); err != nil {
		t.Fatal(err)
	}
	if err := add(4); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cmd := range trips {
		flag, keys := summedShape(t, cmd)
		got = append(got, fmt.Sprintf("%s/%d", flag, keys))
	}
	if want := "[0/3 1/6 1/8]"; fmt.Sprint(got) != want {
		t.Errorf("summed calls (v6 flag/keys after the day's): %v, want %s", got, want)
	}

	// A fresh store on a day that answers 1: no v6 keys, ever.
	trips, answer = nil, 1
	c = newCore(t, c.pipe)
	if err := add(2); err != nil {
		t.Fatal(err)
	}
	if err := add(2); err != nil {
		t.Fatal(err)
	}
	if flag, keys := summedShape(t, trips[1]); len(trips) != 2 || flag != "0" || keys != 2 {
		t.Errorf("%d round trips; the last call's flag %s with %d claim keys, want 2 trips, 0 and 2", len(trips), flag, keys)
	}

	// 3 to a call that carried the v6 keys.
	c = newCore(t, doerFunc(func(cmds [][]any) ([]any, error) { return []any{int64(3)}, nil }))
	err := add(2)
	if err == nil || !strings.Contains(err.Error(), "the summed script answered 3") {
		t.Errorf("err = %v, want the summed script's answer 3 named", err)
	}
}

// TestV6DaysRemembered: a day found to need its v6 claim keys keeps
// getting them after another day's calls, and the record of it is dropped
// once the day has expired.
func TestV6DaysRemembered(t *testing.T) {
	old := tokenledger.DateOf(fixedNow.AddDate(0, 0, -5))
	var got []string
	c := newCore(t, doerFunc(func(cmds [][]any) ([]any, error) {
		flag, _ := summedShape(t, cmds[0])
		day := "today"
		if strings.Contains(fmt.Sprint(cmds[0][3]), string(old)) {
			day = "old"
		}
		got = append(got, day+"/"+flag)
		if day == "old" && flag == "0" {
			return []any{int64(3)}, nil
		}
		return []any{int64(1)}, nil
	}))
	add := func(at time.Time) {
		t.Helper()
		evs := []tokenledger.Event{
			{ID: tokenledger.NewEventID(), Timestamp: at, Model: "m", TotalTokens: 1},
			{ID: tokenledger.NewEventID(), Timestamp: at, Model: "m", TotalTokens: 1},
		}
		if _, err := c.Add(context.Background(), storetest.Batch(evs)); err != nil {
			t.Fatal(err)
		}
	}
	add(old.Time().Add(time.Hour))
	add(fixedNow)
	add(old.Time().Add(time.Hour))
	if want := "[old/0 old/1 today/0 old/1]"; fmt.Sprint(got) != want {
		t.Errorf("calls (day/v6 flag): %v, want %s", got, want)
	}
	oldDay := dayNumber(old.Time())
	c.markV6(oldDay + int64(c.retention) + 1)
	if _, ok := c.v6Days.Load(oldDay); !ok {
		t.Error("a day within the retention of the day marked was dropped")
	}
	c.markV6(oldDay + int64(c.retention) + 2)
	if _, ok := c.v6Days.Load(oldDay); ok {
		t.Error("a day more than the retention before the day marked was kept")
	}
}
