package redis

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// fakeNodes is a Doer with two nodes, each holding keys, answering SCAN
// (MATCH "<prefix>*" only) in pages of two keys and UNLINK by deleting.
type fakeNodes struct {
	mu     sync.Mutex
	keys   [2]map[string]bool
	pages  [2][]string // the key order SCAN walks, fixed at cursor 0
	unlink [][]any
	marked []any // the SET of the reset marker
	done   []any // the SET of the marker that says the reset finished
	order  []string
}

// Do takes the SETs of the reset markers (the first as its script), the keyed commands Reset sends
// through the cluster Doer (the deletions go node by node).
func (f *fakeNodes) Do(_ context.Context, cmds [][]any) ([]any, error) {
	if len(cmds) == 1 && cmds[0][0] == "EVAL" && cmds[0][1] == markResetScript {
		// The reset marker by the server's clock (this machine's, here).
		stamp := strconv.FormatInt(time.Now().UnixMilli(), 10)
		cmds = [][]any{{"SET", cmds[0][3], stamp, "EX", cmds[0][4]}}
		if _, err := f.Do(context.Background(), cmds); err != nil {
			return nil, err
		}
		return []any{stamp}, nil
	}
	if len(cmds) == 1 && cmds[0][0] == "SET" {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch key := cmds[0][1].(string); {
		case strings.HasSuffix(key, ":mark:reset"):
			f.marked = cmds[0]
		case strings.HasSuffix(key, ":mark:resetdone"):
			f.done = cmds[0]
		default:
			return nil, fmt.Errorf("unexpected SET %s", key)
		}
		f.order = append(f.order, cmds[0][1].(string))
		return []any{"OK"}, nil
	}
	return nil, errors.New("Reset must not send keyed commands through the cluster Doer")
}

func (f *fakeNodes) ForEachNode(ctx context.Context, fn func(context.Context, wire.Pipeline) error) error {
	for i := range f.keys {
		node := i
		if err := fn(ctx, doerFunc(func(cmds [][]any) ([]any, error) { return f.node(node, cmds) })); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeNodes) node(n int, cmds [][]any) ([]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]any, len(cmds))
	for i, cmd := range cmds {
		switch cmd[0] {
		case "UNLINK":
			f.unlink = append(f.unlink, cmd)
			for _, k := range cmd[1:] {
				delete(f.keys[n], k.(string))
			}
			out[i] = int64(len(cmd) - 1)
		case "SCAN":
			prefix, ok := strings.CutSuffix(cmd[3].(string), "*")
			if !ok || cmd[2] != "MATCH" {
				return nil, fmt.Errorf("SCAN %v", cmd)
			}
			var at int
			fmt.Sscan(cmd[1].(string), &at)
			if at == 0 {
				f.pages[n] = nil
				for k := range f.keys[n] {
					f.pages[n] = append(f.pages[n], k)
				}
				slices.Sort(f.pages[n])
			}
			var page []any
			for _, k := range f.pages[n][at:min(at+2, len(f.pages[n]))] {
				if strings.HasPrefix(k, prefix) {
					page = append(page, k)
				}
			}
			next := "0"
			if at+2 < len(f.pages[n]) {
				next = fmt.Sprint(at + 2)
			}
			out[i] = []any{next, page}
		default:
			return nil, fmt.Errorf("unexpected %v", cmd)
		}
	}
	return out, nil
}

// TestResetScansEveryNode: Reset visits every node, deletes only its own
// prefix's keys, and keeps each UNLINK within one hash slot.
func TestResetScansEveryNode(t *testing.T) {
	f := &fakeNodes{}
	f.keys[0] = map[string]bool{"tl:{2026-11-27}:totals": true, "tl:{2026-11-27}:id:a": true, "tl:{2026-11-27}:id:b": true, "tl:{2026-11-26}:models": true, "tlx:{2026-11-27}:totals": true, "tl:x:{2026-11-27}:totals": true}
	f.keys[1] = map[string]bool{"tl:{2026-11-25}:totals": true, "tl:{probe}:x": true, "other": true}
	before := time.Now().UnixMilli()
	if err := newCore(t, f).Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.marked) != 5 || f.marked[1] != "tl:mark:reset" || f.marked[3] != "EX" {
		t.Errorf("the reset marker was written as %v, want SET tl:mark:reset <ms> EX <ttl>", f.marked)
	} else if ms, err := strconv.ParseInt(f.marked[2].(string), 10, 64); err != nil || ms < before || ms > time.Now().UnixMilli() {
		t.Errorf("the reset marker holds %v, want the time of the reset in Unix milliseconds", f.marked[2])
	}
	if !reflect.DeepEqual(f.done, append([]any{"SET", "tl:mark:resetdone"}, f.marked[2:]...)) || len(f.order) != 2 || f.order[1] != "tl:mark:resetdone" {
		t.Errorf("the end marker was written as %v (in order %v), want the same time as the reset marker, last", f.done, f.order)
	}
	left := [2][]string{}
	for i := range f.keys {
		for k := range f.keys[i] {
			left[i] = append(left[i], k)
		}
		slices.Sort(left[i])
	}
	if want := [2][]string{{"tl:x:{2026-11-27}:totals", "tlx:{2026-11-27}:totals"}, {"other"}}; !reflect.DeepEqual(left, want) {
		t.Errorf("after Reset the nodes hold %v, want %v", left, want)
	}
	for _, cmd := range f.unlink {
		tag := HashTag(cmd[1].(string))
		for _, k := range cmd[2:] {
			if HashTag(k.(string)) != tag {
				t.Errorf("UNLINK %v spans hash tags", cmd[1:])
			}
		}
	}
}
