package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestReadCacheIsValidated: two instances share a database; each keeps
// the days it read. Whatever one writes — today, back-dated to an old day,
// after a reset with as many events as before — the other's next read
// shows it; while a reset is under way nothing is kept; and a change that
// bypasses the request count (a hand edit) is what the cache does not
// see, which is how the test knows the cache is used at all.
func TestReadCacheIsValidated(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		srv := redistest.Shared(t)
		prefix := redistest.Prefix()
		testReadCache(t, raw(t, srv.Addr()), prefix,
			open(t, redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix}), open(t, redis.RedisOptions{URL: srv.URL(), KeyPrefix: prefix}))
	})
	t.Run("cluster", func(t *testing.T) {
		cl := redistest.SharedCluster(t)
		prefix := redistest.Prefix()
		testReadCache(t, rawCluster(t, cl.Addrs()), prefix,
			open(t, redis.RedisOptions{ClusterNodes: cl.Addrs(), KeyPrefix: prefix}), open(t, redis.RedisOptions{ClusterNodes: cl.Addrs(), KeyPrefix: prefix}))
	})
}

func testReadCache(t *testing.T, c goredis.Cmdable, prefix string, a, b *redis.Store) {
	ctx := context.Background()
	now := noon()
	today := tokenledger.DateOf(now)
	old := today.AddDays(-40)
	q := tokenledger.DayQuery{From: today.AddDays(-90), To: today, Users: true}
	read := func(when string) map[tokenledger.Date]tokenledger.Day {
		t.Helper()
		days, err := b.Days(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		out := map[tokenledger.Date]tokenledger.Day{}
		for _, d := range days {
			out[d.Date] = d
		}
		return out
	}
	add := func(evs ...tokenledger.Event) {
		t.Helper()
		if _, err := a.Add(ctx, storetest.Batch(evs)); err != nil {
			t.Fatal(err)
		}
	}
	add(event("t1", now, "m1", "u1", "s1", 10, 1), event("o1", old.Time().Add(time.Hour), "m1", "u1", "", 5, 1))
	if d := read("first read"); d[today].RequestCount != 1 || d[old].RequestCount != 1 {
		t.Fatalf("first read: %+v", d)
	}

	add(event("t2", now, "m2", "u2", "s2", 20, 2))
	if d := read("after a write today"); d[today].RequestCount != 2 || d[today].Models["m2"].PromptTokens != 20 || d[today].Users["u2"].RequestCount != 1 || d[today].UniqueSessions != 2 {
		t.Errorf("after a write today, the other instance read %+v", d[today])
	}
	add(event("o2", old.Time().Add(2*time.Hour), "m3", "u3", "", 7, 1))
	if d := read("after a back-dated write"); d[old].RequestCount != 2 || d[old].Models["m3"].PromptTokens != 7 {
		t.Errorf("after a write back-dated to %s, the other instance read %+v", old, d[old])
	}
	if days, err := b.Days(ctx, tokenledger.DayQuery{From: today.AddDays(-90), To: today}); err != nil || len(days) != 2 || days[1].Users != nil || days[1].RequestCount != 2 {
		t.Errorf("a read without users (the days cached with them): %+v, %v", days, err)
	}

	// A hand edit of the models hash, which no writer does: unseen while
	// the day's request count is unchanged — the cache is in use.
	modelsKey := prefix + ":{" + string(today) + "}:models"
	if err := c.HIncrBy(ctx, modelsKey, "p|m1", 1000).Err(); err != nil {
		t.Fatal(err)
	}
	if d := read("after a hand edit"); d[today].Models["m1"].PromptTokens != 10 {
		t.Errorf("the hand edit was read (%d prompt tokens): the days are not cached", d[today].Models["m1"].PromptTokens)
	}
	// A reset under way (its first marker written, not the second): every
	// read is whole.
	if err := c.Set(ctx, prefix+":mark:reset", "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{1010, 2010} {
		if i > 0 { // a second edit, which only a whole read sees
			if err := c.HIncrBy(ctx, modelsKey, "p|m1", 1000).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if d := read("during a reset"); d[today].Models["m1"].PromptTokens != want {
			t.Errorf("read %d during a reset gave %d prompt tokens, want %d (read whole)", i+1, d[today].Models["m1"].PromptTokens, want)
		}
	}
	if err := c.Del(ctx, prefix+":mark:reset").Err(); err != nil {
		t.Fatal(err)
	}
	if d := read("once the markers agree again"); d[today].RequestCount != 2 || d[old].RequestCount != 2 { // cached again
		t.Fatalf("read %+v", d)
	}

	// A reset through the writer, then as many events as before to the
	// same days, of other models: the other instance sees the new ones.
	if err := a.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	add(event("t1", now, "n1", "v1", "", 1, 1), event("t2", now, "n2", "v2", "", 2, 2), event("o1", old.Time(), "n1", "v1", "", 3, 3), event("o2", old.Time(), "n3", "v3", "", 4, 4))
	d := read("after the reset and new events")
	if d[today].RequestCount != 2 || d[today].Models["n1"].PromptTokens != 1 || len(d[today].Models) != 2 || d[old].Models["n3"].PromptTokens != 4 {
		t.Errorf("after a reset and as many new events, the other instance read %+v and %+v", d[today], d[old])
	}
	if err := a.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if d := read("after a second reset"); len(d) != 0 {
		t.Errorf("after a reset the other instance still reads %d days", len(d))
	}
}
