package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestClaimAndCountersTogether: when a precondition fails (a key of the
// wrong type, a counter that would overflow), the script writes nothing:
// no claim without its counters, and a retry after the fix counts once.
func TestClaimAndCountersTogether(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	day := tokenledger.DateOf(now)
	key := func(kind string) string { return s.Prefix() + ":{" + string(day) + "}:" + kind }
	evs := []tokenledger.Event{event("ct-1", now, "m", "u", "s", 1, 1), event("ct-2", now, "m", "u2", "s", 1, 1)}

	if err := c.Set(ctx, key("sessions"), "not a set", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Add(ctx, storetest.Batch(evs))
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Add over a string at the sessions key: err = %v, want WRONGTYPE", err)
	}
	if keys := scanKeys(t, c, s.Prefix()+":*"); len(keys) != 1 {
		t.Errorf("a failed script call left keys behind: %v", keys)
	}
	c.Del(ctx, key("sessions"))

	if err := c.HSet(ctx, key("totals"), "t", "4611686018427387900").Err(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Add(ctx, storetest.Batch(evs))
	var oe *tokenledger.CounterOverflowError
	if !errors.As(err, &oe) || oe.Counter != "totalTokens" || oe.Date != day || !errors.Is(err, tokenledger.ErrInvalid) {
		t.Fatalf("Add that would overflow: err = %v, want a CounterOverflowError for totalTokens of %s", err, day)
	}
	if keys := scanKeys(t, c, s.Prefix()+":*"); len(keys) != 1 {
		t.Errorf("a refused script call left keys behind: %v", keys)
	}
	c.Del(ctx, key("totals"))

	res, err := s.Add(ctx, storetest.Batch(evs))
	if err != nil || res.Accepted() != 2 {
		t.Fatalf("retry after the fix: accepted %d, err %v; want 2, nil", res.Accepted(), err)
	}
}

// TestForeignCounterValuesClaimNothing: a counter field the call would
// write that holds something HINCRBY refuses (written by hand or by another
// program), or a value the call would take past 2^62, fails the call
// before its first write — totals, models and users alike — so no id is
// claimed without its counters, and the same events count once after the
// field is repaired.
func TestForeignCounterValuesClaimNothing(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	now := noon()
	day := tokenledger.DateOf(now)
	for _, tc := range []struct {
		kind, field, value, want string
	}{
		{"totals", "n", "many", "does not hold an integer"},
		{"totals", "$", "1.5", "does not hold an integer"},
		{"models", "t|m2", "x", "does not hold an integer"},
		{"models", "n|m2", "007", "does not hold an integer"},
		{"models", "$|m2", "4611686018427387900", "counter costUsd of day"},
		{"users", "p|u2", " 1", "does not hold an integer"},
		{"totals", "t", "-9999999999999999999", "does not hold an integer"},
		{"models", "t|m2", "-5", "does not hold an integer"},
		{"users", "c|u2", "-9223372036854775808", "does not hold an integer"},
		{"users", "c|u2", "4611686018427387903", "counter completionTokens of day"},
	} {
		t.Run(tc.kind+" "+tc.field+" "+tc.value, func(t *testing.T) {
			s := open(t, redis.RedisOptions{URL: srv.URL()})
			key := func(kind string) string { return s.Prefix() + ":{" + string(day) + "}:" + kind }
			evs := []tokenledger.Event{event("fc-1", now, "m", "u", "s", 1, 1), event("fc-2", now, "m2", "u2", "s", 1, 1)}
			evs[1].Cost = 5
			if err := c.HSet(ctx, key(tc.kind), tc.field, tc.value).Err(); err != nil {
				t.Fatal(err)
			}
			_, err := s.Add(ctx, storetest.Batch(evs))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add: err = %v, want %q", err, tc.want)
			}
			if keys := scanKeys(t, c, s.Prefix()+":*"); len(keys) != 1 {
				t.Errorf("the refused call left keys behind: %v", keys)
			}
			c.HDel(ctx, key(tc.kind), tc.field)
			res, err := s.Add(ctx, storetest.Batch(evs))
			if err != nil || res.Accepted() != 2 {
				t.Fatalf("retry after the repair: accepted %d, err %v; want 2, nil", res.Accepted(), err)
			}
			got, err := s.Days(ctx, tokenledger.DayQuery{From: day, To: day, Users: true})
			if err != nil {
				t.Fatal(err)
			}
			if d := got[0]; d.RequestCount != 2 || d.Models["m2"].RequestCount != 1 || d.Users["u2"].RequestCount != 1 {
				t.Errorf("after the retry: %d requests, model m2 %+v, user u2 %+v; want 2, 1, 1", d.RequestCount, d.Models["m2"], d.Users["u2"])
			}
		})
	}
}

// TestScriptRefusesMalformedCalls: a call from a confused client (wrong
// argument count, a value HINCRBY would refuse) fails before any write.
func TestScriptRefusesMalformedCalls(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	p := redistest.Prefix()
	day := "{2026-11-27}"
	old, bucket, field := claimOf(p, "2026-11-27", "a")
	keys := []string{p + ":" + day + ":totals", p + ":" + day + ":models", p + ":" + day + ":users", p + ":" + day + ":userset", p + ":" + day + ":sessions", old, bucket}
	exp := time.Now().Add(time.Hour).Unix()
	for name, args := range map[string][]any{
		"too few":      {exp, "m", "u", "s", 1, 1, 2},
		"v5's shape":   {exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0},
		"v6's shape":   {exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt"},
		"exponent":     {exp, "m", "u", "s", "1e5", 1, 2, 0, 0, 0, 0, "", field},
		"negative":     {exp, "m", "u", "s", 1, -1, 2, 0, 0, 0, 0, "", field},
		"leading zero": {exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, "07", "", field},
		"huge":         {exp, "m", "u", "s", 1, 1, "99999999999999999", 0, 0, 0, 0, "", field},
		"price source": {exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "table", field},
	} {
		err := c.Eval(ctx, redis.AddScript(), keys, args...).Err()
		if err == nil || !strings.Contains(err.Error(), "tokenledger add") {
			t.Errorf("%s: err = %v, want the script's refusal", name, err)
		}
	}
	// v6's keys (one claim key per event) with v7's values.
	if err := c.Eval(ctx, redis.AddScript(), keys[:6], exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt", field).Err(); err == nil || !strings.Contains(err.Error(), "tokenledger add") {
		t.Errorf("v6's keys: err = %v, want the script's refusal", err)
	}
	if left := scanKeys(t, c, p+":*"); len(left) != 0 {
		t.Errorf("refused calls wrote %v", left)
	}
	// The same call, well formed, counts.
	got, err := c.Eval(ctx, redis.AddScript(), keys, exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt", field).Result()
	if err != nil || fmt.Sprint(got) != "[1]" {
		t.Errorf("well-formed call: %v, %v", got, err)
	}
}

// TestScriptSumsExactly: the script sums the increments of one call per
// hash field; sums must be exact integers, also past 2^53 where Lua's
// doubles round (each value is then added on its own), and fields must
// hold exactly what one HINCRBY per event and field would leave.
func TestScriptSumsExactly(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	p := redistest.Prefix()
	day := "{2026-11-27}"
	k := func(kind string) string { return p + ":" + day + ":" + kind }
	exp := time.Now().Add(time.Hour).Unix()
	// Per event: model, user, session, prompt, completion, total, cache
	// read, cache write, reasoning, cost, price source.
	evs := [][]any{
		{"m", "u", "s", "1", "2", "4503599627370497", "0", "0", "0", "9007199254740993", "pt"},
		{"m", "u", "s", "3", "4", "4503599627370497", "0", "0", "0", "1", "pc"},
		{"m", "", "", "5", "0", "9999999999999999", "7", "0", "0", "9999999999999999", "pu"},
		{"m2", "u", "s2", "0", "0", "0", "0", "0", "0", "0", ""},
	}
	keys := []string{k("totals"), k("models"), k("users"), k("userset"), k("sessions")}
	args := []any{exp}
	for i, e := range evs {
		old, bucket, field := claimOf(p, "2026-11-27", fmt.Sprint(i))
		keys = append(keys, old, bucket)
		args = append(append(args, e...), field)
	}
	got, err := c.Eval(ctx, redis.AddScript(), keys, args...).Result()
	if err != nil || fmt.Sprint(got) != "[1 1 1 1]" {
		t.Fatalf("script: %v, %v", got, err)
	}
	want := map[string]map[string]string{
		"totals": {"t": "19007199254740993", "p": "9", "c": "6", "n": "4", "cr": "7", "$": "19007199254740993", "pc": "1", "pt": "1", "pu": "1", "nov6": "1"},
		"models": {"t|m": "19007199254740993", "p|m": "9", "c|m": "6", "n|m": "3", "$|m": "19007199254740993",
			"pc|m": "1", "pt|m": "1", "pu|m": "1", "t|m2": "0", "p|m2": "0", "c|m2": "0", "n|m2": "1"},
		"users": {"t|u": "9007199254740994", "p|u": "4", "c|u": "6", "n|u": "3", "$|u": "9007199254740994", "pc|u": "1", "pt|u": "1"},
	}
	for kind, w := range want {
		h, err := c.HGetAll(ctx, k(kind)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(h) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", kind, h, w)
		}
	}
	if m, _ := c.SMembers(ctx, k("userset")).Result(); fmt.Sprint(m) != "[u]" {
		t.Errorf("userset = %v, want [u]", m)
	}
	if m, _ := c.SMembers(ctx, k("sessions")).Result(); len(m) != 2 {
		t.Errorf("sessions = %v, want s and s2", m)
	}
	for i, key := range keys {
		if i >= 5 && i%2 == 1 {
			continue // v6 claim keys, which v7 only reads
		}
		if ttl, _ := c.TTL(ctx, key).Result(); ttl <= 0 {
			t.Errorf("%s has no expiry (%v)", key, ttl)
		}
	}
	// The same ids again, and a new one: only the new one counts.
	old, bucket, field := claimOf(p, "2026-11-27", "new")
	keys = append(keys, old, bucket)
	args = append(args, "m", "", "", "1", "1", "2", "0", "0", "0", "0", "pu", field)
	got, err = c.Eval(ctx, redis.AddScript(), keys, args...).Result()
	if err != nil || fmt.Sprint(got) != "[0 0 0 0 1]" {
		t.Fatalf("script again: %v, %v", got, err)
	}
	if n, _ := c.HGet(ctx, k("totals"), "n").Result(); n != "5" {
		t.Errorf("totals n = %s, want 5", n)
	}
	if tt, _ := c.HGet(ctx, k("totals"), "t").Result(); tt != "19007199254740995" {
		t.Errorf("totals t = %s, want 19007199254740995", tt)
	}
}

// TestScriptChecksOnlyWhatItWrites: a key of the wrong type fails a call
// that would write it, before any write, and does not fail a call that
// leaves it alone (no event with a user leaves the users keys alone).
func TestScriptChecksOnlyWhatItWrites(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	p := redistest.Prefix()
	day := "{2026-11-27}"
	k := func(kind string) string { return p + ":" + day + ":" + kind }
	old, bucket, field := claimOf(p, "2026-11-27", "a")
	keys := []string{k("totals"), k("models"), k("users"), k("userset"), k("sessions"), old, bucket}
	exp := time.Now().Add(time.Hour).Unix()
	for i, kind := range []string{"totals", "models", "users", "userset", "sessions", bucket[len(k("")):]} {
		if err := c.Set(ctx, k(kind), "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		// The first call's event counts first, then the call's second
		// event finds its claim hash holding a string: nothing written.
		args := []any{exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt", field}
		ks := keys
		if i == 5 {
			o2, b2, f2 := claimOf(p, "2026-11-27", "a-other-bucket")
			if b2 == bucket {
				t.Fatal("pick another id: same bucket")
			}
			ks = append([]string{k("totals"), k("models"), k("users"), k("userset"), k("sessions"), o2, b2}, old, bucket)
			args = append([]any{exp, "m", "u", "s", 1, 1, 2, 0, 0, 0, 0, "pt", f2}, args[1:]...)
		}
		err := c.Eval(ctx, redis.AddScript(), ks, args...).Err()
		if err == nil || !strings.Contains(err.Error(), "WRONGTYPE tokenledger key "+k(kind)+" holds a string") {
			t.Errorf("%s holds a string: err = %v, want the script's WRONGTYPE", kind, err)
		}
		if left := scanKeys(t, c, p+":*"); len(left) != 1 {
			t.Errorf("%s holds a string: the refused call wrote %v", kind, left)
		}
		c.Del(ctx, k(kind))
	}
	for _, kind := range []string{"users", "userset", "sessions"} {
		if err := c.Set(ctx, k(kind), "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Eval(ctx, redis.AddScript(), keys, exp, "m", "", "", 1, 1, 2, 0, 0, 0, 0, "", field).Result()
	if err != nil || fmt.Sprint(got) != "[1]" {
		t.Errorf("a call without user or session over strings at their keys: %v, %v; want [1]", got, err)
	}
}

// TestClaimTokens: a call with a claim token (as kind kv-rest sends, and
// sends again when a reply was lost) answers 1 for an event whose claim
// holds its own token — counted by its lost attempt — without counting it
// again; an id claimed by anyone else, or at its second place in the call,
// answers 0; a malformed token is refused before any write.
func TestClaimTokens(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	p := redistest.Prefix()
	day := p + ":{2026-11-27}:"
	dayKeys := []string{day + "totals", day + "models", day + "users", day + "userset", day + "sessions"}
	exp := time.Now().Add(time.Hour).Unix()
	call := func(ids []string, token string) (any, error) {
		keys := append(slices.Clone(dayKeys), make([]string, 0, len(ids))...)
		args := []any{exp}
		for _, id := range ids {
			old, bucket, field := claimOf(p, "2026-11-27", id)
			keys = append(keys, old, bucket)
			args = append(args, "m", "u", "s", 1, 2, 3, 0, 0, 0, 0, "pc", field)
		}
		if token != "" {
			args = append(args, token)
		}
		return c.Eval(ctx, redis.AddScript(), keys, args...).Result()
	}
	requests := func() string { return c.HGet(ctx, day+"totals", "n").Val() }
	// Claim keys as v6 (or another program) left them, in a day that had
	// counted an event: a day whose first event the script counts holds
	// no v6 claim key, and the script no longer looks for one there.
	if err := c.HSet(ctx, day+"totals", "n", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, day+"id:foreign", "x", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, day+"id:hash", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []string{"1234", "01234", "12345678901234567890", "12a45", "-12345"} {
		if _, err := call([]string{"bad"}, bad); err == nil || !strings.Contains(err.Error(), "claim token") {
			t.Errorf("token %q: err = %v, want the script's refusal", bad, err)
		}
	}
	if left := scanKeys(t, c, day+"*"); len(left) != 3 {
		t.Fatalf("refused tokens wrote: %v", left)
	}

	const tok = "4611686018427387000"
	if got, err := call([]string{"a", "b", "a"}, tok); err != nil || fmt.Sprint(got) != "[1 1 0]" {
		t.Fatalf("first attempt: %v, %v; want [1 1 0]", got, err)
	}
	if _, bucket, field := claimOf(p, "2026-11-27", "a"); c.HGet(ctx, bucket, field).Val() != tok {
		t.Errorf("claim holds %q, want the token", c.HGet(ctx, bucket, field).Val())
	}
	if n := requests(); n != "3" {
		t.Fatalf("requestCount %s after the first attempt, want 1 + 2", n)
	}
	// The same call again (its reply was lost): reported as counted, not
	// counted again; the ids claimed by others stay duplicates.
	if got, err := call([]string{"a", "b", "a", "foreign", "hash"}, tok); err != nil || fmt.Sprint(got) != "[1 1 0 0 0]" {
		t.Fatalf("second attempt: %v, %v; want [1 1 0 0 0]", got, err)
	}
	if n := requests(); n != "3" {
		t.Fatalf("requestCount %s after the second attempt, want still 1 + 2", n)
	}
	// Another call, with another token or none, finds them counted before.
	for _, other := range []string{"12345", ""} {
		if got, err := call([]string{"a", "b"}, other); err != nil || fmt.Sprint(got) != "[0 0]" {
			t.Errorf("token %q: %v, %v; want [0 0]", other, got, err)
		}
	}
	// A claim made without a token holds "1"; a token never matches it.
	if got, err := call([]string{"plain"}, ""); err != nil || fmt.Sprint(got) != "[1]" {
		t.Fatalf("call without a token: %v, %v", got, err)
	}
	if got, err := call([]string{"plain"}, "10000"); err != nil || fmt.Sprint(got) != "[0]" {
		t.Errorf("token against a plain claim: %v, %v; want [0]", got, err)
	}
	if n := requests(); n != "4" {
		t.Errorf("requestCount %s at the end, want 1 + 3", n)
	}
}

// TestOverflowOfANameWithSpaces: the script's overflow refusal for a model
// or user whose name has spaces is still the CounterOverflowError every
// store returns (a 400), not an unexplained failure.
func TestOverflowOfANameWithSpaces(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	day := tokenledger.DateOf(now)
	for _, tc := range []struct{ kind, field, counter string }{
		{"models", "p|gpt 4o of mini", "promptTokens"},
		{"users", "t|Ada Lovelace", "totalTokens"},
	} {
		if err := c.HSet(ctx, s.Prefix()+":{"+string(day)+"}:"+tc.kind, tc.field, "4611686018427387900").Err(); err != nil {
			t.Fatal(err)
		}
		_, err := s.Add(ctx, storetest.Batch([]tokenledger.Event{event("sp-"+tc.kind, now, "gpt 4o of mini", "Ada Lovelace", "s", 100, 1)}))
		var oe *tokenledger.CounterOverflowError
		if !errors.As(err, &oe) || oe.Counter != tc.counter || oe.Date != day {
			t.Errorf("%s field %q near 2^62: err = %v, want a CounterOverflowError for %s of %s", tc.kind, tc.field, err, tc.counter, day)
		}
		c.HDel(ctx, s.Prefix()+":{"+string(day)+"}:"+tc.kind, tc.field)
	}
}
