package loadgen

import (
	"strconv"
	"time"

	"github.com/tokenledger/tokenledger"
)

// names are the run-scoped model, user and session names, and the start of
// every event id: "bench-<run>-m3", "bench-<run>-u17", "bench-<run>-s5",
// "bench-<run>-<client>-<seq>". Only this run uses them, so the totals of
// these names on a shared service grow by this run's events alone.
type names struct {
	prefix   string // "bench-<run>-"
	models   []string
	users    []string
	sessions []string
}

func newNames(run string, models, users, sessions int) *names {
	n := &names{prefix: "bench-" + run + "-"}
	mk := func(kind string, count int) []string {
		out := make([]string, count)
		for i := range out {
			out[i] = n.prefix + kind + strconv.Itoa(i)
		}
		return out
	}
	n.models, n.users, n.sessions = mk("m", models), mk("u", users), mk("s", sessions)
	return n
}

// modelIndex and userIndex map a name back to its index, or -1 when the
// name is not this run's.
func (n *names) index(list []string, kind, name string) int {
	rest, ok := cutPrefix(name, n.prefix+kind)
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= len(list) || list[i] != name {
		return -1
	}
	return i
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	return s[len(prefix):], true
}

// key names one event of the run: the seq-th event client w made.
type key struct {
	w   int
	seq int64
}

// spec is what an event carries; it is a pure function of its key and the
// run's seed, so that a re-sent event is exactly the event sent before.
type spec struct {
	model, user, session int
	prompt, completion   int64
	cost                 tokenledger.Nanos
}

// splitmix64 is a fast, well-mixed hash of x.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// specOf returns the event k of a run with seed, spread over the given
// numbers of models, users and sessions.
func specOf(seed uint64, k key, models, users, sessions int) spec {
	h := splitmix64(seed ^ uint64(k.w)<<40 ^ uint64(k.seq))
	g := splitmix64(h)
	s := spec{
		model:      int(h % uint64(models)),
		user:       int((h >> 20) % uint64(users)),
		session:    int((h >> 40) % uint64(sessions)),
		prompt:     1 + int64(g%4000),
		completion: int64((g >> 16) % 1000),
	}
	// $3 per million prompt tokens and $12 per million completion tokens,
	// in nano-dollars: exact integers.
	s.cost = tokenledger.Nanos(s.prompt*3 + s.completion*12)
	return s
}

// totals returns what the event adds to its model's and user's totals.
func (s spec) totals() tokenledger.Totals {
	return tokenledger.Totals{PromptTokens: s.prompt, CompletionTokens: s.completion,
		TotalTokens: s.prompt + s.completion, RequestCount: 1, Cost: s.cost}
}

// appendID appends the id of event k to b.
func (n *names) appendID(b []byte, k key) []byte {
	b = append(b, n.prefix...)
	b = strconv.AppendInt(b, int64(k.w), 10)
	b = append(b, '-')
	return strconv.AppendInt(b, k.seq, 10)
}

// appendJSON appends event k as a JSON object in the wire format of
// POST /api/tokens. Names and ids need no escaping (see names).
func (n *names) appendJSON(b []byte, k key, s spec, ts string) []byte {
	b = append(b, `{"id":"`...)
	b = n.appendID(b, k)
	b = append(b, `","timestamp":"`...)
	b = append(b, ts...)
	b = append(b, `","model":"`...)
	b = append(b, n.models[s.model]...)
	b = append(b, `","userId":"`...)
	b = append(b, n.users[s.user]...)
	b = append(b, `","sessionId":"`...)
	b = append(b, n.sessions[s.session]...)
	b = append(b, `","promptTokens":`...)
	b = strconv.AppendInt(b, s.prompt, 10)
	b = append(b, `,"completionTokens":`...)
	b = strconv.AppendInt(b, s.completion, 10)
	b = append(b, `,"costUsd":`...)
	b = append(b, s.cost.String()...)
	return append(b, '}')
}

// event returns event k as a tokenledger.Event.
func (n *names) event(k key, s spec, ts time.Time) tokenledger.Event {
	return tokenledger.Event{
		ID: string(n.appendID(nil, k)), Timestamp: ts,
		Model: n.models[s.model], UserID: n.users[s.user], SessionID: n.sessions[s.session],
		PromptTokens: s.prompt, CompletionTokens: s.completion, TotalTokens: s.prompt + s.completion,
		Cost: s.cost,
	}
}
