package redis

import (
	"fmt"
	"strconv"
)

// Merging add calls: a transport that sends concurrent callers' commands
// together (store/redisstore's combiner) may merge several add script
// calls of one day into one call carrying all their events, and split the
// reply back. The merged call is as atomic as each part was: it fails
// whole (every part gets the failure) or counts every new event it
// carries. An id in two parts counts once, in the first (the script
// answers an id's second place in a call 0), so exactly one caller is told it is new.

// AddGroup identifies the add calls that can be merged into one: the same
// script command (EVALSHA, or EVAL with the source), the same five day keys
// (so the same prefix and day, one cluster slot) and the same expiry.
type AddGroup struct {
	eval bool
	day  [DayKeys]string
	exp  int64
}

// AddCall reports whether cmd is a call of the add script as Core builds
// it, and if so its group and how many events it carries.
func AddCall(cmd []any) (g AddGroup, events int, ok bool) {
	if len(cmd) < 3+DayKeys+KeysPerEvent+1+ArgsPerEvent {
		return AddGroup{}, 0, false
	}
	switch name, _ := cmd[0].(string); name {
	case "EVALSHA":
		if s, _ := cmd[1].(string); s != addSHA {
			return AddGroup{}, 0, false
		}
	case "EVAL":
		if s, _ := cmd[1].(string); s != addScript {
			return AddGroup{}, 0, false
		}
		g.eval = true
	default:
		return AddGroup{}, 0, false
	}
	nk, _ := cmd[2].(string)
	keys, err := strconv.Atoi(nk)
	n := (keys - DayKeys) / KeysPerEvent
	if err != nil || n < 1 || keys != DayKeys+KeysPerEvent*n || len(cmd) != 3+keys+1+ArgsPerEvent*n {
		return AddGroup{}, 0, false
	}
	for i := range DayKeys {
		if g.day[i], ok = cmd[3+i].(string); !ok {
			return AddGroup{}, 0, false
		}
	}
	if g.exp, ok = cmd[3+keys].(int64); !ok {
		return AddGroup{}, 0, false
	}
	return g, n, true
}

// MergeAdd returns one call of the add script that carries the events of
// parts, in order. Every part must be an add call (AddCall) of one group.
func MergeAdd(parts [][]any) []any {
	n := 0
	for _, p := range parts {
		n += addEvents(p)
	}
	first := parts[0]
	cmd := make([]any, 0, 3+DayKeys+KeysPerEvent*n+1+ArgsPerEvent*n)
	cmd = append(cmd, first[0], first[1], strconv.Itoa(DayKeys+KeysPerEvent*n))
	cmd = append(cmd, first[3:3+DayKeys]...)
	for _, p := range parts {
		cmd = append(cmd, p[3+DayKeys:3+DayKeys+KeysPerEvent*addEvents(p)]...)
	}
	cmd = append(cmd, first[3+DayKeys+KeysPerEvent*addEvents(first)])
	for _, p := range parts {
		cmd = append(cmd, p[3+DayKeys+KeysPerEvent*addEvents(p)+1:]...)
	}
	return cmd
}

// addEvents returns the number of events of an add call (see AddCall).
func addEvents(cmd []any) int {
	return (len(cmd) - 3 - DayKeys - 1) / (KeysPerEvent + ArgsPerEvent)
}

// SplitAddReply returns the reply of the events [from, from+n) of a merged
// add call of total events, as that part's own call would have been
// answered: a Redis error reply as it is (the whole call failed), or those
// events' values of the array reply. Any other reply, or an array of any
// other length, is an error: the answer cannot be trusted.
func SplitAddReply(r any, total, from, n int) (any, error) {
	switch x := r.(type) {
	case ReplyError:
		return x, nil
	case []any:
		if len(x) == total && from >= 0 && n >= 0 && from+n <= total {
			return x[from : from+n : from+n], nil
		}
	}
	return nil, fmt.Errorf("a merged script call of %d events was answered %T with %d values", total, r, lenOf(r))
}
