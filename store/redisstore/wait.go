package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	redismodel "github.com/tokenledger/tokenledger/store/redis"
)

// replicaWait holds the answer to every add script call until n replicas
// have its writes: the round trip that carries the calls ends with
// WAIT n timeout on the same connection (WAIT counts the replicas that
// acknowledged that connection's writes), and when fewer answer in time
// the calls fail as unavailable, so that the fallback spool takes the
// events and delivers them again later (by id: never twice). On a cluster
// the calls go to the master that owns their slot, one pipeline per
// master, so that the WAIT reaches the master that took the writes. See
// docs/redis.md, "Failover and WAIT".
type replicaWait struct {
	n       int64
	timeout time.Duration
	// cluster routes the calls by slot; nil for a single server.
	cluster *redis.ClusterClient
}

// errFewReplicas is the failure of writes not acknowledged by enough
// replicas.
var errFewReplicas = errors.New("too few replicas acknowledged the write")

// waitCmd is the command that ends a pipeline carrying add calls.
func (w *replicaWait) waitCmd() []any {
	return []any{"WAIT", strconv.FormatInt(w.n, 10), strconv.FormatInt(w.timeout.Milliseconds(), 10)}
}

// isAdd reports whether cmd is a call of the add script, the only command
// whose writes are waited for.
func isAdd(cmd []any) bool {
	_, _, ok := redismodel.AddCall(cmd)
	return ok
}

// needed reports whether cmds hold an add call.
func (w *replicaWait) needed(cmds [][]any) bool {
	for _, c := range cmds {
		if isAdd(c) {
			return true
		}
	}
	return false
}

// exec is doer.exec for cmds that hold an add call: see replicaWait.
func (w *replicaWait) exec(ctx context.Context, d *doer, cmds [][]any) (out []any, errs []error, err error) {
	if w.cluster == nil {
		return w.sendWaiting(ctx, d.c, cmds)
	}
	out, errs = make([]any, len(cmds)), make([]error, len(cmds))
	// Group the add calls by the master of their slot (every key of a
	// call is in one slot; the first is the day's hash); the rest go
	// through the cluster client as without waiting.
	groups := map[*redis.Client][]int{}
	var rest []int
	for i, cmd := range cmds {
		if !isAdd(cmd) {
			rest = append(rest, i)
			continue
		}
		key, _ := cmd[3].(string)
		node, err := w.cluster.MasterForKey(ctx, key)
		if err != nil {
			errs[i] = err
			continue
		}
		groups[node] = append(groups[node], i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	reload := false
	run := func(idx []int, send func([][]any) ([]any, []error, error)) {
		defer wg.Done()
		sub := make([][]any, len(idx))
		for k, i := range idx {
			sub[k] = cmds[i]
		}
		o, e, err := send(sub)
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
		go run(idx, func(sub [][]any) ([]any, []error, error) { return w.sendWaiting(ctx, node, sub) })
	}
	if len(rest) > 0 {
		wg.Add(1)
		go run(rest, func(sub [][]any) ([]any, []error, error) { return send(ctx, d.c, sub) })
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
	e, ok := r.(redismodel.ReplyError)
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
// and fails each add call that may have written when fewer than n replicas
// acknowledged in time.
func (w *replicaWait) sendWaiting(ctx context.Context, c goRedis, cmds [][]any) ([]any, []error, error) {
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
	case redismodel.ReplyError:
		fail = fmt.Errorf("WAIT %d %d was refused: %w", w.n, w.timeout.Milliseconds(), got)
	default:
		if fail = errs[last]; fail == nil {
			fail = fmt.Errorf("WAIT %d %d answered %T", w.n, w.timeout.Milliseconds(), out[last])
		}
	}
	out, errs = out[:last], errs[:last]
	if fail != nil {
		for i, cmd := range cmds {
			// A call answered with an error reply wrote nothing: its
			// answer stands. Any other may have written.
			if _, refused := out[i].(redismodel.ReplyError); errs[i] == nil && !refused && isAdd(cmd) {
				errs[i] = fail
			}
		}
	}
	return out, errs, nil
}

// FewReplicasMessage is logged at Open for each master with fewer
// connected replicas than WaitReplicas: every write to it will go to the
// spool until they connect.
const FewReplicasMessage = "⚠️ Redis master has fewer replicas than each write waits for; writes to it go to the local spool until they connect"

// warnFewReplicas logs FewReplicasMessage for each master (the server, or
// every master of a cluster) that has fewer than n replicas connected now.
// It only informs: a replica may be on its way.
func (s *Store) warnFewReplicas(ctx context.Context) {
	w := s.client.wait
	if w == nil {
		return
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
			s.log.Warn(FewReplicasMessage, "master", c.Options().Addr, "replicas", got, "wait_replicas", w.n)
		}
		return nil
	}
	var err error
	if s.client.cluster != nil {
		err = s.client.cluster.ForEachMaster(ctx, check)
	} else if c, ok := s.client.c.(*redis.Client); ok {
		err = check(ctx, c)
	}
	if err != nil {
		s.log.Warn("could not count the Redis replicas each write waits for", "err", err)
	}
}
