package redis_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// claimOf returns the v6 claim key, the claim hash and the claim field of
// id on day under prefix p.
func claimOf(p string, day tokenledger.Date, id string) (old, bucket, field string) {
	k, err := redis.NewKeys(p)
	if err != nil {
		panic(err)
	}
	return k.Claim(day, id)
}

// countClaims returns how many ids are claimed on day under prefix p: the
// fields of its claim hashes plus its claim keys (v6, or too long an id).
func countClaims(t testing.TB, c goredis.Cmdable, p string, day tokenledger.Date) int {
	t.Helper()
	n := len(scanKeys(t, c, p+":{"+string(day)+"}:"+redis.KindID+"*"))
	for _, h := range scanKeys(t, c, p+":{"+string(day)+"}:"+redis.KindIDs+"*") {
		l, err := c.HLen(context.Background(), h).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += int(l)
	}
	return n
}

// isClaimed reports whether id is claimed on day under prefix p, in either
// layout.
func isClaimed(t testing.TB, c goredis.Cmdable, p string, day tokenledger.Date, id string) bool {
	t.Helper()
	old, bucket, field := claimOf(p, day, id)
	n, err := c.Exists(context.Background(), old).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n == 1 || field == "" {
		return n == 1
	}
	ok, err := c.HExists(context.Background(), bucket, field).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// v6Script is the add script as tokenledger v6 ran it, kept to write a
// database as the version before the claim hashes did.
func v6Script(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/add-v6.lua")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// v6Call returns the v6 script's keys and values for events of day under
// prefix p (one claim key per event, 11 values per event).
func v6Call(p string, day tokenledger.Date, exp int64, evs []tokenledger.Event, token string) ([]string, []any) {
	k, _ := redis.NewKeys(p)
	keys := []string{k.Day(day, redis.KindTotals), k.Day(day, redis.KindModels), k.Day(day, redis.KindUsers),
		k.Day(day, redis.KindUserSet), k.Day(day, redis.KindSessions)}
	args := []any{exp}
	for _, e := range evs {
		keys = append(keys, k.ID(day, e.ID))
		args = append(args, e.Model, e.UserID, e.SessionID, e.PromptTokens, e.CompletionTokens, e.TotalTokens,
			e.CacheReadTokens, e.CacheWriteTokens, e.ReasoningTokens, int64(e.Cost), "")
	}
	if token != "" {
		args = append(args, token)
	}
	return keys, args
}

// TestOldClaimsHonoured: events an instance of the version before (script
// v6: a claim key per id) counted stay counted after the upgrade: sent
// again through the new store they are duplicates, only the new one
// counts, and a call with a claim token does not take a v6 claim for its
// own.
func TestOldClaimsHonoured(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	day := tokenledger.DateOf(now)
	exp := day.Time().AddDate(0, 0, tokenledger.DefaultRetentionDays+1).Unix()
	before := []tokenledger.Event{
		event(tokenledger.NewEventID(), now, "m", "u1", "s1", 10, 5),
		event("legacy-1", now, "m", "u2", "s1", 20, 5),
		event(tokenledger.NewEventID(), now, "m", "", "", 30, 5),
	}
	keys, args := v6Call(s.Prefix(), day, exp, before[:2], "")
	if got, err := c.Eval(ctx, v6Script(t), keys, args...).Result(); err != nil || fmt.Sprint(got) != "[1 1]" {
		t.Fatalf("v6 call: %v, %v", got, err)
	}
	keys, args = v6Call(s.Prefix(), day, exp, before[2:], "4611686018427387000")
	if got, err := c.Eval(ctx, v6Script(t), keys, args...).Result(); err != nil || fmt.Sprint(got) != "[1]" {
		t.Fatalf("v6 call with a token: %v, %v", got, err)
	}
	fresh := event(tokenledger.NewEventID(), now, "m", "u1", "s2", 1, 1)
	res, err := s.Add(ctx, storetest.Batch(append(slices.Clone(before), fresh)))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.New) != "[false false false true]" {
		t.Errorf("after the upgrade: new = %v, want only the new event", res.New)
	}
	// Over the REST API (a claim token), and with the v6 claim's own token.
	for _, tok := range []string{"12345", "4611686018427387000"} {
		keys := []string{}
		k, _ := redis.NewKeys(s.Prefix())
		for _, kind := range []string{redis.KindTotals, redis.KindModels, redis.KindUsers, redis.KindUserSet, redis.KindSessions} {
			keys = append(keys, k.Day(day, kind))
		}
		args := []any{exp}
		for _, e := range before {
			old, bucket, field := k.Claim(day, e.ID)
			keys = append(keys, old, bucket)
			args = append(args, e.Model, e.UserID, e.SessionID, e.PromptTokens, e.CompletionTokens, e.TotalTokens, 0, 0, 0, 0, "", field)
		}
		got, err := c.Eval(ctx, redis.AddScript(), keys, append(args, tok)...).Result()
		if err != nil || fmt.Sprint(got) != "[0 0 0]" {
			t.Errorf("v7 call with token %s over v6 claims: %v, %v; want [0 0 0]", tok, got, err)
		}
	}
	days, err := s.Days(ctx, tokenledger.DayQuery{From: day, To: day})
	if err != nil || len(days) != 1 {
		t.Fatalf("Days: %v, %v", days, err)
	}
	if d := days[0]; d.RequestCount != 4 || d.TotalTokens != 15+25+35+2 {
		t.Errorf("day: %d requests, %d tokens; want 4, %d: an event counted twice or lost", d.RequestCount, d.TotalTokens, 15+25+35+2)
	}
	if n := countClaims(t, c, s.Prefix(), day); n != 4 {
		t.Errorf("%d claims, want 4 (3 v6 keys, 1 field)", n)
	}
}

// TestClaimIDsDoNotCollide: ids that share a claim encoding's look — a
// UUID, its uppercase form, the literal bytes of its compact field
// without the leading space (an id holds no spaces) and its escape, and an
// id too long for a claim hash — each count once, and only once. The
// encoding of any bytes is TestClaimFieldsDoNotCollide.
func TestClaimIDsDoNotCollide(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	day := tokenledger.DateOf(now)
	// A random UUID whose compact field holds no space after its first
	// byte (a base-95 digit may be one), so that the field's bytes are an id.
	var u, f string
	for range 1000 {
		if u = uuid.NewString(); !strings.Contains(redis.ClaimField(u)[1:], " ") {
			f = redis.ClaimField(u)
			break
		}
	}
	if f == "" {
		t.Fatal("1000 random UUIDs all have a space in their compact field")
	}
	long := strings.Repeat("L", tokenledger.MaxIDLength)
	var evs []tokenledger.Event
	for _, id := range []string{u, strings.ToUpper(u), f[1:], "~" + f[1:], long, long[1:]} {
		evs = append(evs, event(id, now, "m", "u", "s", 1, 0))
		res, err := s.Add(ctx, storetest.Batch(evs[len(evs)-1:]))
		if err != nil || !res.New[0] {
			t.Errorf("id %.40q: new = %v, %v; want new (no other id's claim)", id, res.New, err)
		}
	}
	res, err := s.Add(ctx, storetest.Batch(evs))
	if err != nil || fmt.Sprint(res.New) != "[false false false false false false]" {
		t.Errorf("all again: new = %v, %v; want none", res.New, err)
	}
	days, err := s.Days(ctx, tokenledger.DayQuery{From: day, To: day})
	if err != nil || len(days) != 1 || days[0].RequestCount != int64(len(evs)) {
		t.Fatalf("Days: %+v, %v; want %d requests", days, err, len(evs))
	}
	// The layout: the long ids have claim keys, the rest are fields.
	old, bucket, field := claimOf(s.Prefix(), day, u)
	if n, _ := c.Exists(ctx, old).Result(); n != 0 {
		t.Errorf("the UUID has a claim key %s", old)
	}
	if v, err := c.HGet(ctx, bucket, field).Result(); err != nil || v != "1" {
		t.Errorf("HGET %s %q = %q, %v; want 1", bucket, field, v, err)
	}
	if keys := scanKeys(t, c, s.Prefix()+":{"+string(day)+"}:"+redis.KindID+"*"); len(keys) != 2 {
		t.Errorf("claim keys %v, want the two long ids'", keys)
	}
}

// TestClaimHashesStayListpack: at the density of 10^7 events over 91 days
// (110,000 UUIDv7 ids in a day) every claim hash stays a listpack (Redis's
// compact encoding), holds at most 128 fields, and expires with its day.
func TestClaimHashesStayListpack(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	now := noon()
	day := tokenledger.DateOf(now)
	const events = 110_000
	batch := make([]tokenledger.Event, 0, 1000)
	for i := range events {
		batch = append(batch, event(tokenledger.NewEventID(), now, "m", fmt.Sprint("u", i%100), "", 1, 1))
		if len(batch) == cap(batch) {
			if _, err := s.Add(ctx, storetest.Batch(batch)); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	exp := day.Time().AddDate(0, 0, tokenledger.DefaultRetentionDays+1).Unix()
	hashes := scanKeys(t, c, s.Prefix()+":{"+string(day)+"}:"+redis.KindIDs+"*")
	if len(hashes) != redis.ClaimBuckets {
		t.Errorf("%d claim hashes, want %d", len(hashes), redis.ClaimBuckets)
	}
	total, most := 0, 0
	for i, h := range hashes {
		p := c.Pipeline()
		enc := p.ObjectEncoding(ctx, h)
		n := p.HLen(ctx, h)
		at := p.ExpireTime(ctx, h)
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if enc.Val() != "listpack" {
			t.Errorf("%s (%d fields) is a %s, want a listpack", h, n.Val(), enc.Val())
		}
		if i < 10 && int64(at.Val()/time.Second) != exp {
			t.Errorf("%s expires at %v, want %d", h, at.Val(), exp)
		}
		total += int(n.Val())
		most = max(most, int(n.Val()))
	}
	if total != events || most > 128 {
		t.Errorf("claim hashes hold %d fields (at most %d in one), want %d, at most 128", total, most, events)
	}
	t.Logf("%d claim hashes, %d fields, at most %d in one", len(hashes), total, most)
}
