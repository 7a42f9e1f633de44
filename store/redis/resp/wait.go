package resp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// replicaWait holds the answer to every write marked for it until n
// replicas have it: the round trip ends with WAIT n timeout on the same
// connection, and when fewer answer in time those writes fail. On a
// cluster they go to the master of their slot, one pipeline per master,
// so that the WAIT reaches the master that took them (docs/redis.md,
// "Failover and WAIT").
type replicaWait struct {
	n       int64
	timeout time.Duration
	// cluster routes the calls by slot; nil for a single server.
	cluster *redis.ClusterClient
}

// errFewReplicas is the failure of writes not acknowledged by enough
// replicas.
var errFewReplicas = errors.New("too few replicas acknowledged the write")

// waitCmd is the command that ends a pipeline carrying waited writes.
func (w *replicaWait) waitCmd() []any {
	return []any{"WAIT", strconv.FormatInt(w.n, 10), strconv.FormatInt(w.timeout.Milliseconds(), 10)}
}

// firstKey returns the key a command is routed by: EVAL's and EVALSHA's
// first key, any other command's first argument.
func firstKey(cmd []any) string {
	i := 1
	if name, _ := cmd[0].(string); strings.EqualFold(name, "EVALSHA") || strings.EqualFold(name, "EVAL") {
		i = 3
	}
	if len(cmd) <= i {
		return ""
	}
	key, _ := cmd[i].(string)
	return key
}

// exec is Client.Send for cmds that hold a write marked in wait: see
// replicaWait.
func (w *replicaWait) exec(ctx context.Context, d *Client, cmds [][]any, wait []bool) (out []any, errs []error, err error) {
	if w.cluster == nil {
		return w.sendWaiting(ctx, d.c, cmds, wait)
	}
	out, errs = make([]any, len(cmds)), make([]error, len(cmds))
	// Group the waited writes by the master of their slot (every key of
	// a command is in one slot); the rest go through the cluster client
	// as without waiting.
	groups := map[*redis.Client][]int{}
	var rest []int
	for i, cmd := range cmds {
		if !wait[i] {
			rest = append(rest, i)
			continue
		}
		node, err := w.cluster.MasterForKey(ctx, firstKey(cmd))
		if err != nil {
			errs[i] = err
			continue
		}
		groups[node] = append(groups[node], i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	reload := false
	run := func(idx []int, send func([][]any, []bool) ([]any, []error, error)) {
		defer wg.Done()
		sub, subWait := make([][]any, len(idx)), make([]bool, len(idx))
		for k, i := range idx {
			sub[k], subWait[k] = cmds[i], wait[i]
		}
		o, e, err := send(sub, subWait)
		mu.Lock()
		defer mu.Unlock()
		for k, i := range idx {
			switch {
			case err != nil:
				errs[i] = err
			default:
				out[i], errs[i] = o[k], e[k]
			}
			if errs[i] != nil && !errors.Is(errs[i], errFewReplicas) || movedOrDown(out[i]) {
				reload = true
			}
		}
	}
	for node, idx := range groups {
		wg.Add(1)
		go run(idx, func(sub [][]any, wait []bool) ([]any, []error, error) { return w.sendWaiting(ctx, node, sub, wait) })
	}
	if len(rest) > 0 {
		wg.Add(1)
		go run(rest, func(sub [][]any, _ []bool) ([]any, []error, error) { return send(ctx, d.c, sub) })
	}
	wg.Wait()
	if reload {
		// A master died or a slot moved: learn the new layout now rather
		// than at go-redis's next periodic reload.
		w.cluster.ReloadState(ctx)
	}
	return out, errs, nil
}

// movedOrDown reports whether r is an error reply that means the slot is
// served elsewhere now, or not at all.
func movedOrDown(r any) bool {
	e, ok := r.(wire.ReplyError)
	if !ok {
		return false
	}
	switch e.Code() {
	case "MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "MASTERDOWN":
		return true
	}
	return false
}

// sendWaiting sends cmds followed by WAIT as one pipeline on c, which must
// use one connection for it (a single server's client, not a cluster's),
// and fails each waited write that may have written when fewer than n
// replicas acknowledged in time.
func (w *replicaWait) sendWaiting(ctx context.Context, c goRedis, cmds [][]any, wait []bool) ([]any, []error, error) {
	all := append(cmds[:len(cmds):len(cmds)], w.waitCmd())
	out, errs, err := send(ctx, c, all)
	if err != nil {
		return nil, nil, err
	}
	last := len(cmds)
	var fail error
	switch got := out[last].(type) {
	case int64:
		if got < w.n {
			fail = fmt.Errorf("%w: %d of %d within %s", errFewReplicas, got, w.n, w.timeout)
		}
	case wire.ReplyError:
		fail = fmt.Errorf("WAIT %d %d was refused: %w", w.n, w.timeout.Milliseconds(), got)
	default:
		if fail = errs[last]; fail == nil {
			fail = fmt.Errorf("WAIT %d %d answered %T", w.n, w.timeout.Milliseconds(), out[last])
		}
	}
	out, errs = out[:last], errs[:last]
	if fail != nil {
		for i := range cmds {
			// A command answered with an error reply wrote nothing: its
			// answer stands. Any other may have written.
			if _, refused := out[i].(wire.ReplyError); errs[i] == nil && !refused && wait[i] {
				errs[i] = fail
			}
		}
	}
	return out, errs, nil
}

// WaitReplicas returns how many replicas each waited write waits for; 0
// when writes do not wait.
func (d *Client) WaitReplicas() int64 {
	if d.wait == nil {
		return 0
	}
	return d.wait.n
}

// FewReplicas calls fn with the number of replicas connected now to each
// master (the server, or every master of a cluster) that has fewer than
// WaitReplicas; it does nothing when writes do not wait. It returns an
// error when a master could not be asked.
func (d *Client) FewReplicas(ctx context.Context, fn func(master string, replicas int64)) error {
	w := d.wait
	if w == nil {
		return nil
	}
	check := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		got := int64(-1)
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
				got, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		if got < w.n {
			fn(c.Options().Addr, got)
		}
		return nil
	}
	if d.cluster != nil {
		return d.cluster.ForEachMaster(ctx, check)
	}
	if c, ok := d.c.(*redis.Client); ok {
		return check(ctx, c)
	}
	return nil
}

// ServerOptions returns the go-redis options of a single server's client
// (nil on a cluster), for tests of what a URL sets.
func (d *Client) ServerOptions() *redis.Options {
	if c, ok := d.c.(*redis.Client); ok {
		return c.Options()
	}
	return nil
}
