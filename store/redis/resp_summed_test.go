package redis_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// dump returns every key under prefix p (the prefix cut off) with its
// contents: a hash's fields, a set's sorted members.
func dump(t *testing.T, c goredis.Cmdable, p string) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, k := range scanKeys(t, c, p+":*") {
		name := strings.TrimPrefix(k, p)
		switch typ, _ := c.Type(ctx, k).Result(); typ {
		case "hash":
			out[name] = c.HGetAll(ctx, k).Val()
		case "set":
			m := c.SMembers(ctx, k).Val()
			slices.Sort(m)
			out[name] = m
		default:
			out[name] = c.Get(ctx, k).Val()
		}
	}
	return out
}

// summedBatch returns n events of today over a few models, users and
// sessions, with every counter and price source in use; ids are prefix+i.
func summedBatch(prefix string, n int) []tokenledger.Event {
	now := noon()
	srcs := []tokenledger.PriceSource{tokenledger.PriceUnknown, tokenledger.PricedByClient, tokenledger.PricedByTable, tokenledger.Unpriced}
	evs := make([]tokenledger.Event, n)
	for i := range evs {
		user := ""
		if i%5 != 0 {
			user = fmt.Sprint("u", i%7)
		}
		session := ""
		if i%3 != 0 {
			session = fmt.Sprint("s", i%11)
		}
		e := event(fmt.Sprint(prefix, i), now, fmt.Sprint("m", i%4), user, session, int64(i), int64(2*i+1))
		e.CacheReadTokens, e.ReasoningTokens, e.Cost, e.Pricing = int64(i%2), int64(i%3), tokenledger.Nanos(i*1000), srcs[i%4]
		evs[i] = e
	}
	return evs
}

// perEvent adds evs in calls of fewer than MinSummedEvents events, which
// the per-event script (v7) writes, and returns which were new.
func perEvent(t *testing.T, s *redis.Store, evs []tokenledger.Event) []bool {
	t.Helper()
	var isNew []bool
	for start := 0; start < len(evs); start += redis.MinSummedEvents - 1 {
		res, err := s.Add(context.Background(), storetest.Batch(evs[start:min(start+redis.MinSummedEvents-1, len(evs))]))
		if err != nil {
			t.Fatal(err)
		}
		isNew = append(isNew, res.New...)
	}
	return isNew
}

// TestSummedCallWritesWhatV7Writes: a batch of new ids, summed in Go and
// written by v9, leaves exactly the keys, fields and values the same batch
// leaves when v7 writes it per event; and the summed script ran.
func TestSummedCallWritesWhatV7Writes(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	summed, ref := open(t, redis.RedisOptions{URL: srv.URL()}), open(t, redis.RedisOptions{URL: srv.URL()})
	evs := summedBatch("all-new-", 500)
	before := commandCalls(t, c, "hsetnx")
	res, err := summed.Add(context.Background(), storetest.Batch(evs))
	if err != nil || res.Accepted() != len(evs) {
		t.Fatalf("summed Add: accepted %d of %d, err %v", res.Accepted(), len(evs), err)
	}
	if n := commandCalls(t, c, "hsetnx") - before; n < len(evs) {
		t.Fatalf("%d HSETNX for %d events: the summed script did not run", n, len(evs))
	}
	if isNew := perEvent(t, ref, evs); slices.Contains(isNew, false) {
		t.Fatal("the reference store found an id claimed")
	}
	got, want := dump(t, c, summed.Prefix()), dump(t, c, ref.Prefix())
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summed call wrote\n%v\nper-event calls wrote\n%v", got, want)
	}
	// The same batch again: nothing new, nothing changes.
	res, err = summed.Add(context.Background(), storetest.Batch(evs))
	if err != nil || res.Accepted() != 0 {
		t.Fatalf("the batch again: accepted %d, err %v; want 0", res.Accepted(), err)
	}
	if again := dump(t, c, summed.Prefix()); !reflect.DeepEqual(again, got) {
		t.Error("the batch sent again changed the store")
	}
}

// TestSummedCallWithDuplicates: a batch whose ids partly repeat (within
// the batch, and from an earlier batch) counts each id once, at its first
// place, exactly as per-event calls count it.
func TestSummedCallWithDuplicates(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	summed, ref := open(t, redis.RedisOptions{URL: srv.URL()}), open(t, redis.RedisOptions{URL: srv.URL()})
	earlier := summedBatch("dup-", 300)[:100]
	for _, s := range []*redis.Store{summed, ref} {
		if _, err := s.Add(ctx, storetest.Batch(earlier)); err != nil {
			t.Fatal(err)
		}
	}
	for name, evs := range map[string][]tokenledger.Event{
		"from before":       summedBatch("dup-", 300)[50:], // ids 50 to 99 were counted
		"within the batch":  append(summedBatch("dup-in-", 200), summedBatch("dup-in-", 200)[:30]...),
		"both, interleaved": slices.Concat(summedBatch("dup-", 120)[90:], summedBatch("dup-both-", 150), summedBatch("dup-both-", 150)[140:]),
	} {
		res, err := summed.Add(ctx, storetest.Batch(evs))
		if err != nil {
			t.Fatal(err)
		}
		if want := perEvent(t, ref, evs); !reflect.DeepEqual(res.New, want) {
			t.Errorf("%s: New differs from per-event calls at %d of %d", name, slices.Index(res.New, !want[0]), len(want))
		}
		if got, want := dump(t, c, summed.Prefix()), dump(t, c, ref.Prefix()); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the store differs from per-event calls", name)
		}
	}
}

// TestSummedCallOverflow: a summed call whose sum would take a counter to
// 2^62, though no event alone would, is refused as a
// CounterOverflowError and claims nothing.
func TestSummedCallOverflow(t *testing.T) {
	srv := redistest.Shared(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	day := tokenledger.DateOf(noon())
	models := s.Prefix() + ":{" + string(day) + "}:models"
	if err := c.HSet(ctx, models, "c|m1", fmt.Sprint(int64(1)<<62-150)).Err(); err != nil {
		t.Fatal(err)
	}
	evs := summedBatch("of-", 100) // completion tokens 2i+1: m1's sum is 1250
	_, err := s.Add(ctx, storetest.Batch(evs))
	var oe *tokenledger.CounterOverflowError
	if !errors.As(err, &oe) || oe.Counter != "completionTokens" || oe.Date != day {
		t.Fatalf("summed call past 2^62: err = %v, want a CounterOverflowError for completionTokens", err)
	}
	if n := countClaims(t, c, s.Prefix(), day); n != 0 {
		t.Errorf("a refused call claimed %d ids", n)
	}
	if keys := scanKeys(t, c, s.Prefix()+":*"); len(keys) != 1 {
		t.Errorf("a refused call left keys: %v", keys)
	}
}
