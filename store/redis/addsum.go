package redis

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"strconv"
)

// MinSummedEvents is the fewest events a call sends summed (the v9
// script): one event alone keeps the per-event script (v7), which has
// nothing to sum. From two events on (concurrent single events merged by
// the combiner, or a batch) Redis ran 8.4 commands per event against 15.8
// with v7 under 64 clients of single events (docs/redis.md, v9).
const MinSummedEvents = 2

// sumScript counts a call's events from the sums the caller made, when
// every id in it is new, and otherwise writes nothing (docs/redis.md,
// "Script versions", v11).
//
//go:embed addsum.lua
var sumScript string

// SumScript returns the Lua source of the summed add script (v11).
func SumScript() string { return sumScript }

// sumSHA is the SHA-1 of sumScript.
var sumSHA = func() string {
	h := sha1.Sum([]byte(sumScript))
	return hex.EncodeToString(h[:])
}()

// SumScriptSHA returns the SHA-1 digest of the summed add script.
func SumScriptSHA() string { return sumSHA }

// sumLimit bounds every sum a summed call sends: the script refuses 2^62
// and above, and a larger sum would overflow anyway.
const sumLimit = 1 << 62

// counterSum is the sums of one model or one userId: t p c n $ pc pt pu.
type counterSum struct {
	name string
	v    [8]uint64
}

// summedArgs returns cl as a call of the summed script, or false when it
// must go per event: too few events, an id claimed by its own key (no
// field), an id twice in the call, or a sum of 2^62 or more.
func (cl *call) summedArgs() ([]any, bool) {
	n := len(cl.events)
	if cl.perEvent || n < MinSummedEvents {
		return nil, false
	}
	seen := make(map[string]struct{}, n)
	for _, f := range cl.fields {
		if _, dup := seen[f]; dup || f == "" {
			return nil, false
		}
		seen[f] = struct{}{}
	}
	var day [11]uint64 // t p c cr cw r $ n pc pt pu
	var models, users []*counterSum
	byModel, byUser := map[string]*counterSum{}, map[string]*counterSum{}
	sessions := map[string]struct{}{}
	var sessionList []any
	ok := true
	add := func(s *uint64, v uint64) {
		*s += v
		ok = ok && *s < sumLimit && v < sumLimit
	}
	for j := range cl.events {
		e := &cl.events[j]
		t, p, c, x := uint64(e.TotalTokens), uint64(e.PromptTokens), uint64(e.CompletionTokens), uint64(e.Cost)
		src := sourceCodes[e.Pricing]
		for k, v := range [...]uint64{t, p, c, uint64(e.CacheReadTokens), uint64(e.CacheWriteTokens), uint64(e.ReasoningTokens), x, 1} {
			add(&day[k], v)
		}
		rec := func(m map[string]*counterSum, list *[]*counterSum, name string) {
			r := m[name]
			if r == nil {
				r = &counterSum{name: name}
				m[name] = r
				*list = append(*list, r)
			}
			for k, v := range [...]uint64{t, p, c, 1, x} {
				add(&r.v[k], v)
			}
			if src != "" {
				r.v[sourceSlot(src)]++
			}
		}
		rec(byModel, &models, e.Model)
		if e.UserID != "" {
			rec(byUser, &users, e.UserID)
		}
		if src != "" {
			day[sourceSlot(src)+3]++
		}
		if e.SessionID != "" {
			if _, had := sessions[e.SessionID]; !had {
				sessions[e.SessionID] = struct{}{}
				sessionList = append(sessionList, e.SessionID)
			}
		}
	}
	if !ok {
		return nil, false
	}
	var hashes []string // the day's claim hashes, when the script asked for them
	if cl.day.wantHashes.Load() {
		hashes = cl.day.buckets
	}
	claimKeys := n // the claim hashes; with the v6 claim keys, 2 per event
	if cl.withV6 {
		claimKeys = KeysPerEvent * n
	}
	cmd := make([]any, 0, 3+DayKeys+2+len(hashes)+claimKeys+6+n+11+9*(len(models)+len(users))+len(sessionList)+1)
	if cl.eval {
		cmd = append(cmd, "EVAL", sumScript)
	} else {
		cmd = append(cmd, "EVALSHA", sumSHA)
	}
	cmd = append(cmd, strconv.Itoa(DayKeys+2+len(hashes)+claimKeys))
	cmd = append(cmd, cl.day.keys[:]...)
	cmd = append(cmd, cl.day.marker, cl.day.dense)
	for _, h := range hashes {
		cmd = append(cmd, h)
	}
	v6 := int64(0)
	if cl.withV6 {
		v6 = 1
		for j := range cl.events {
			cmd = append(cmd, cl.day.claim+cl.events[j].ID)
		}
	}
	for j := range cl.events {
		cmd = append(cmd, cl.day.buckets[ClaimBucket(cl.fields[j])])
	}
	cmd = append(cmd, cl.day.exp, int64(len(models)), int64(len(users)), int64(len(sessionList)), int64(len(hashes)), v6)
	for _, f := range cl.fields {
		cmd = append(cmd, f)
	}
	for _, v := range day {
		cmd = append(cmd, int64(v))
	}
	for _, list := range [][]*counterSum{models, users} {
		for _, r := range list {
			cmd = append(cmd, r.name)
			for _, v := range r.v {
				cmd = append(cmd, int64(v))
			}
		}
	}
	cmd = append(cmd, sessionList...)
	if cl.token != "" {
		cmd = append(cmd, cl.token)
	}
	return cmd, true
}

// sourceSlot is the place of a price source's count in a counterSum: pc
// 5, pt 6, pu 7 (the day's are 3 further on).
func sourceSlot(code string) int {
	switch code {
	case CodePricedClient:
		return 5
	case CodePricedTable:
		return 6
	}
	return 7
}

// summedWantsHashes is the summed script's answer when it counted every
// event but the day needs its claim hashes in a call (to set their expiry
// and the claim-expiry marker, or to make them hash tables on a dense
// day), and this call did not carry them: the day's next summed call does.
const summedWantsHashes = 2

// summedWantsV6Keys is the summed script's answer when the call left out
// its events' v6 claim keys and the day may hold some (its totals lack
// nov6): it wrote nothing, and the day's summed calls carry them from
// then on.
const summedWantsV6Keys = 3

// summedReply reads the summed script's answer into isNew: 1 (or
// summedWantsHashes) counted every event of the call; 0 wrote nothing, and
// the call must be sent per event. It reports whether the call is done;
// summedWantsV6Keys is handled by the caller.
func summedReply(v int64, idx []int, isNew []bool) (bool, error) {
	switch v {
	case 1, summedWantsHashes:
		for _, i := range idx {
			isNew[i] = true
		}
		return true, nil
	case 0:
		return false, nil
	}
	return false, errSummedReply(v)
}

// errSummedReply is the summed script's answer when it is neither 0 nor 1.
type errSummedReply int64

func (e errSummedReply) Error() string {
	return "the summed script answered " + strconv.FormatInt(int64(e), 10) + ", want 0, 1, 2 or 3"
}
