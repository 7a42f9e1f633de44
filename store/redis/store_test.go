package redis

// These tests drive the Store with scripted replies to check how it builds
// commands and reads replies. What the commands do on a real server is
// tested in redis_test (store_*_test.go) against real redis-server
// processes.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// doerFunc is a scripted transport.
type doerFunc func(cmds [][]any) ([]any, error)

func (f doerFunc) Do(_ context.Context, cmds [][]any) ([]any, error) { return f(cmds) }

var fixedNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newCore(t *testing.T, d wire.Pipeline) *Store {
	t.Helper()
	// Without the read cache: these tests read the replies of whole days
	// (readcache_test.go tests the cache).
	cfg := config{Pipeline: d, Prefix: "tl", Now: func() time.Time { return fixedNow }, Server: "redis test:1", NoReadCache: true, Logger: slog.New(slog.DiscardHandler)}
	if n, ok := d.(wire.Nodes); ok {
		cfg.Nodes = n
	}
	c, err := newStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewKeys(t *testing.T) {
	for _, p := range []string{"", "a b", "a{b", "a}b", "a*", "a?", "a[b]", `a\b`, "é", strings.Repeat("x", 65)} {
		if _, err := NewKeys(p); err == nil {
			t.Errorf("NewKeys(%q) accepted", p)
		}
	}
	k, err := NewKeys("tokenledger:prod")
	if err != nil {
		t.Fatal(err)
	}
	d := tokenledger.Date("2026-11-27")
	if got, want := k.Day(d, KindModels), "tokenledger:prod:{2026-11-27}:models"; got != want {
		t.Errorf("Day = %q, want %q", got, want)
	}
	if got, want := k.ID(d, "ab|c"), "tokenledger:prod:{2026-11-27}:id:ab|c"; got != want {
		t.Errorf("ID = %q, want %q", got, want)
	}
	for key, want := range map[string]string{
		k.Day(d, KindTotals): "2026-11-27", k.Probe("x"): "probe", "plain": "plain", "a{}b{c}": "a{}b{c}", "{x}{y}": "x",
	} {
		if got := HashTag(key); got != want {
			t.Errorf("HashTag(%q) = %q, want %q", key, got, want)
		}
	}
	if !k.Owns(k.Day(d, KindTotals)) || k.Owns("tokenledger:prod:x:{2026-11-27}:totals") || k.Owns("tokenledger:{2026-11-27}:totals") {
		t.Error("Owns claims the wrong keys")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	d := doerFunc(func([][]any) ([]any, error) { return nil, nil })
	for _, cfg := range []config{
		{Server: "x"},
		{Pipeline: d},
		{Pipeline: d, Server: "x", Prefix: "a b"},
		{Pipeline: d, Server: "x", RetentionDays: -1},
		{Pipeline: d, Server: "x", RetentionDays: tokenledger.MaxRetentionDays + 1},
	} {
		if _, err := newStore(cfg); err == nil {
			t.Errorf("newStore(%+v) accepted", cfg)
		}
	}
}

// TestAddBuildsOneCallPerDay: events are grouped by day in order of first
// appearance, chunked past MaxEventsPerCall, all in one Do; the replies are
// mapped back to the events; an expired day is not sent. The fake server
// answers the summed calls 0 (an id claimed before), so they come again
// per event in a second Do, which the test reads.
func TestAddBuildsOneCallPerDay(t *testing.T) {
	var got [][][]any
	c := newCore(t, doerFunc(func(cmds [][]any) ([]any, error) {
		got = append(got, cmds)
		out := make([]any, len(cmds))
		for i, cmd := range cmds {
			if cmd[1] == SumScriptSHA() {
				out[i] = int64(0)
				continue
			}
			// EVALSHA sha numkeys, DayKeys + 2n keys, 1 + 12n args.
			n := (len(cmd) - 3 - DayKeys - 1) / (KeysPerEvent + ArgsPerEvent)
			r := make([]any, n)
			for j := range r {
				r[j] = int64((i + j) % 2)
			}
			out[i] = r
		}
		return out, nil
	}))
	var evs []tokenledger.Event
	for i := range 2300 {
		evs = append(evs, tokenledger.Event{ID: fmt.Sprint("a", i), Timestamp: fixedNow, Model: "m", TotalTokens: 1})
	}
	evs = append(evs, tokenledger.Event{ID: "old", Timestamp: fixedNow.AddDate(0, 0, -91), Model: "m"}) // expired: R = 90
	evs = append(evs, tokenledger.Event{ID: "y", Timestamp: fixedNow.AddDate(0, 0, -1), Model: "m", UserID: "u", SessionID: "s", PromptTokens: 3, TotalTokens: 3, Cost: 7})
	res, err := c.Add(context.Background(), storetest.Batch(evs))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0]) != 4 || len(got[1]) != 3 {
		t.Fatalf("Add made %d round trips, want 2 (4 calls, then the 3 summed ones per event)", len(got))
	}
	for i, cmd := range got[0][:3] {
		if cmd[1] != SumScriptSHA() {
			t.Errorf("call %d of %v events was not summed", i, cmd[2])
		}
	}
	cmds := append(got[1][:3:3], got[0][3])
	if len(cmds) != 4 {
		t.Fatalf("Add sent %d script calls, want 4 (1000 + 1000 + 300 today, 1 yesterday)", len(cmds))
	}
	for i, want := range []int{1000, 1000, 300, 1} {
		cmd := cmds[i]
		if cmd[0] != "EVALSHA" || cmd[1] != AddScriptSHA() {
			t.Errorf("call %d is %v %v, want EVALSHA of the script", i, cmd[0], cmd[1])
		}
		if cmd[2] != fmt.Sprint(DayKeys+KeysPerEvent*want) {
			t.Errorf("call %d declares %v keys, want %d", i, cmd[2], DayKeys+KeysPerEvent*want)
		}
	}
	y := cmds[3]
	day := "2026-11-26"
	wantKeys := []any{"tl:{" + day + "}:totals", "tl:{" + day + "}:models", "tl:{" + day + "}:users", "tl:{" + day + "}:userset", "tl:{" + day + "}:sessions", "tl:{" + day + "}:id:y",
		fmt.Sprintf("tl:{%s}:ids:%d", day, ClaimBucket("y"))}
	if !reflect.DeepEqual(y[3:10], wantKeys) {
		t.Errorf("keys = %v, want %v", y[3:10], wantKeys)
	}
	// Expiry: the start of 2026-11-26 + R + 1 = 2027-02-25.
	wantArgs := []any{time.Date(2027, 2, 25, 0, 0, 0, 0, time.UTC).Unix(), "m", "u", "s", int64(3), int64(0), int64(3), int64(0), int64(0), int64(0), int64(7), "", "y"}
	if !reflect.DeepEqual(y[10:], wantArgs) {
		t.Errorf("args = %v, want %v", y[10:], wantArgs)
	}
	// Replies: call i, event j is new when (i+j) is odd.
	for k, isNew := range res.New[:2300] {
		i, j := k/1000, k%1000
		if want := (i+j)%2 == 1; isNew != want {
			t.Fatalf("New[%d] = %v, want %v", k, isNew, want)
		}
	}
	if res.New[2300] {
		t.Error("the expired event was reported new")
	}
	if !res.New[2301] {
		t.Error("yesterday's event was not reported new") // call 3, event 0: (3+0)%2 == 1
	}
}

// TestAddReloadsScriptOnNoScript: calls answered NOSCRIPT are sent again,
// with the source (EVAL), in one more round trip; the others are not.
func TestAddReloadsScriptOnNoScript(t *testing.T) {
	var trips [][][]any
	c := newCore(t, doerFunc(func(cmds [][]any) ([]any, error) {
		trips = append(trips, cmds)
		out := make([]any, len(cmds))
		for i, cmd := range cmds {
			if cmd[0] == "EVALSHA" && i == 1 {
				out[i] = ReplyError("NOSCRIPT No matching script. Please use EVAL.")
			} else {
				out[i] = []any{int64(1)}
			}
		}
		return out, nil
	}))
	evs := []tokenledger.Event{
		{ID: "a", Timestamp: fixedNow, Model: "m"},
		{ID: "b", Timestamp: fixedNow.AddDate(0, 0, -1), Model: "m"},
	}
	res, err := c.Add(context.Background(), storetest.Batch(evs))
	if err != nil {
		t.Fatal(err)
	}
	if len(trips) != 2 || len(trips[1]) != 1 || trips[1][0][0] != "EVAL" || trips[1][0][1] != AddScript() {
		t.Fatalf("trips = %d, second = %v", len(trips), trips[1])
	}
	if !reflect.DeepEqual(trips[1][0][2:], trips[0][1][2:]) {
		t.Error("the EVAL retry does not carry the same keys and arguments")
	}
	if !reflect.DeepEqual(res.New, []bool{true, true}) {
		t.Errorf("New = %v", res.New)
	}
}

// TestAddErrors: transport failures are ErrUnavailable naming the server;
// an ended context is the context's error; server-side refusals are
// classified; an ended context never reaches the server.
func TestAddErrors(t *testing.T) {
	ev := []tokenledger.Event{{ID: "a", Timestamp: fixedNow, Model: "m"}}
	reply := func(r any) wire.Pipeline {
		return doerFunc(func(cmds [][]any) ([]any, error) { return []any{r}, nil })
	}
	cases := []struct {
		name        string
		d           wire.Pipeline
		unavailable bool
		contains    string
	}{
		{"transport", doerFunc(func([][]any) ([]any, error) { return nil, errors.New("dial tcp: refused") }), true, "redis test:1: add 1 events: storage unavailable: dial tcp: refused"},
		{"loading", reply(ReplyError("LOADING Redis is loading the dataset in memory")), true, "LOADING"},
		{"oom", reply(ReplyError("OOM command not allowed")), true, "OOM"},
		{"wrongtype", reply(ReplyError("WRONGTYPE tokenledger key x holds a string")), false, "WRONGTYPE"},
		{"short reply", reply([]any{}), false, "answered"},
		{"bad value", reply([]any{int64(2)}), false, "want 0 or 1"},
		{"reply count", doerFunc(func([][]any) ([]any, error) { return nil, nil }), true, "got 0 replies"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newCore(t, tc.d).Add(context.Background(), storetest.Batch(ev))
			if err == nil || errors.Is(err, tokenledger.ErrUnavailable) != tc.unavailable || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %v; want unavailable=%v containing %q", err, tc.unavailable, tc.contains)
			}
		})
	}

	called := false
	c := newCore(t, doerFunc(func([][]any) ([]any, error) { called = true; return nil, errors.New("x") }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Add(ctx, storetest.Batch(ev)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if called {
		t.Error("an ended context reached the server")
	}
}

// TestDaysReadsReplies: the replies of HGETALL and SCARD become Days;
// names may contain "|"; unknown counter codes are ignored; expired days
// are not asked for.
func TestDaysReadsReplies(t *testing.T) {
	var sent [][]any
	c := newCore(t, doerFunc(func(cmds [][]any) ([]any, error) {
		sent = cmds
		out := make([]any, len(cmds))
		for i, cmd := range cmds {
			key := cmd[1].(string)
			switch {
			case !strings.Contains(key, "2026-11-27"):
				if cmd[0] == "SCARD" {
					out[i] = int64(0)
				} else {
					out[i] = []any{}
				}
			case strings.HasSuffix(key, ":totals"):
				out[i] = []any{"t", "15", "p", "10", "c", "5", "n", "2", "cr", "1", "cw", "2", "r", "3", "$", "1500000001", "zz", "9"}
			case strings.HasSuffix(key, ":models"):
				out[i] = []any{"t|claude|sonnet", "15", "p|claude|sonnet", "10", "c|claude|sonnet", "5", "n|claude|sonnet", "2", "$|claude|sonnet", "1500000001", "q|claude|sonnet", "4"}
			case strings.HasSuffix(key, ":users"):
				out[i] = []any{"t|a|b", "15", "n|a|b", "2"}
			case strings.HasSuffix(key, ":userset"):
				out[i] = int64(1)
			case strings.HasSuffix(key, ":sessions"):
				out[i] = int64(2)
			}
		}
		return out, nil
	}))
	today := tokenledger.DateOf(fixedNow)
	days, err := c.Days(context.Background(), tokenledger.DayQuery{From: today.AddDays(-200), To: today, Users: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 91*5 {
		t.Errorf("asked %d commands, want %d (91 days × 5: expired days are not asked for)", len(sent), 91*5)
	}
	want := tokenledger.Day{Date: today, TotalTokens: 15, PromptTokens: 10, CompletionTokens: 5, RequestCount: 2,
		CacheReadTokens: 1, CacheWriteTokens: 2, ReasoningTokens: 3, Cost: 1500000001, UniqueUsers: 1, UniqueSessions: 2,
		Models: map[string]tokenledger.Totals{"claude|sonnet": {TotalTokens: 15, PromptTokens: 10, CompletionTokens: 5, RequestCount: 2, Cost: 1500000001}},
		Users:  map[string]tokenledger.Totals{"a|b": {TotalTokens: 15, RequestCount: 2}},
	}
	if len(days) != 1 || !reflect.DeepEqual(days[0], want) {
		t.Errorf("days = %+v\nwant %+v", days, want)
	}
}

// TestDaysRefusesWhatItCannotRead: malformed data is an error naming the
// key; error replies are classified; bad ranges are refused.
func TestDaysRefusesWhatItCannotRead(t *testing.T) {
	today := tokenledger.DateOf(fixedNow)
	q := tokenledger.DayQuery{From: today, To: today}
	withTotals := func(r any) wire.Pipeline {
		return doerFunc(func(cmds [][]any) ([]any, error) {
			return []any{r, []any{}, int64(0), int64(0)}, nil
		})
	}
	for name, tc := range map[string]struct {
		d           wire.Pipeline
		unavailable bool
		contains    string
	}{
		"not a number": {withTotals([]any{"t", "x"}), false, "tl:{2026-11-27}:totals"},
		"odd list":     {withTotals([]any{"t"}), false, "field/value list"},
		"busy":         {withTotals(ReplyError("BUSY Redis is busy running a script")), true, "BUSY"},
		"bad field": {doerFunc(func([][]any) ([]any, error) {
			return []any{[]any{"n", "1"}, []any{"nobar", "1"}, int64(0), int64(0)}, nil
		}), false, "no counter code"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newCore(t, tc.d).Days(context.Background(), q)
			if err == nil || errors.Is(err, tokenledger.ErrUnavailable) != tc.unavailable || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %v; want unavailable=%v containing %q", err, tc.unavailable, tc.contains)
			}
		})
	}
	c := newCore(t, withTotals([]any{}))
	if _, err := c.Days(context.Background(), tokenledger.DayQuery{From: "2026-13-01", To: today}); err == nil {
		t.Error("a bad From date was accepted")
	}
	if days, err := c.Days(context.Background(), tokenledger.DayQuery{From: today, To: today.AddDays(-1)}); err != nil || days != nil {
		t.Errorf("From > To: %v, %v", days, err)
	}
	if _, err := c.Days(context.Background(), tokenledger.DayQuery{From: today, To: today.AddDays(MaxDaysPerRead)}); err == nil {
		t.Error("a range longer than MaxDaysPerRead was accepted")
	}
}

// TestExpireAtByDayNumber: the fast day arithmetic Add uses agrees with
// the date-based ExpireAt around midnight, including before 1970.
func TestExpireAtByDayNumber(t *testing.T) {
	c := newCore(t, doerFunc(func([][]any) ([]any, error) { return nil, nil }))
	for _, ts := range []time.Time{
		time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 26, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 11, 27, 1, 30, 0, 0, time.FixedZone("UTC+2", 7200)), // 23:30 UTC the day before
		time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := c.expireAt(dayNumber(ts)), c.ExpireAt(tokenledger.DateOf(ts)).Unix(); got != want {
			t.Errorf("%s: expireAt = %d, ExpireAt = %d", ts, got, want)
		}
	}
}

// TestClaimTokens: with Config.ClaimTokens, every script call ends with a
// token of its own (the calls of one Add too, so that an id repeated in a
// later call finds another token and stays a duplicate), and such calls are
// never merged with others; without it no call carries one.
func TestClaimTokens(t *testing.T) {
	var sent [][][]any
	d := doerFunc(func(cmds [][]any) ([]any, error) {
		sent = append(sent, cmds)
		out := make([]any, len(cmds))
		for i, cmd := range cmds {
			n, _ := strconv.Atoi(cmd[2].(string))
			ones := make([]any, (n-DayKeys)/KeysPerEvent)
			for j := range ones {
				ones[j] = int64(1)
			}
			out[i] = ones
		}
		return out, nil
	})
	c, err := newStore(config{Pipeline: d, Prefix: "tl", Now: func() time.Time { return fixedNow }, Server: "test", ClaimTokens: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	evs := []tokenledger.Event{
		{ID: "a", Timestamp: fixedNow, Model: "m"},
		{ID: "b", Timestamp: fixedNow.AddDate(0, 0, -1), Model: "m"},
	}
	for range 2 {
		if _, err := c.Add(context.Background(), storetest.Batch(evs)); err != nil {
			t.Fatal(err)
		}
	}
	tokenOf := func(cmd []any) string {
		n, _ := strconv.Atoi(cmd[2].(string))
		if len(cmd) != 3+n+1+ArgsPerEvent*(n-DayKeys)/KeysPerEvent+1 {
			t.Fatalf("call %v has no claim token", cmd)
		}
		return cmd[len(cmd)-1].(string)
	}
	tokens := []string{tokenOf(sent[0][0]), tokenOf(sent[0][1]), tokenOf(sent[1][0]), tokenOf(sent[1][1])}
	if len(slices.Compact(slices.Sorted(slices.Values(tokens)))) != len(tokens) {
		t.Errorf("calls share a token: %v", tokens)
	}
	for _, tok := range tokens {
		if v, err := strconv.ParseInt(tok, 10, 64); err != nil || v < 10_000 || v >= 1<<62 || strconv.FormatInt(v, 10) != tok {
			t.Errorf("token %q is not a decimal integer from 10^4 to 2^62", tok)
		}
	}
	calls := c.buildCalls(evs)
	if calls[0].mergeable() {
		t.Errorf("a call with a claim token counts as mergeable")
	}
	for _, cmd := range builtCalls(t, evs) {
		if n, _ := strconv.Atoi(cmd[2].(string)); len(cmd) != 3+n+1+ArgsPerEvent*(n-DayKeys)/KeysPerEvent {
			t.Errorf("without ClaimTokens a call carries %d values more", len(cmd)-(3+n+1+ArgsPerEvent*(n-DayKeys)/KeysPerEvent))
		}
	}
}
