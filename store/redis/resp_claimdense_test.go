package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestDenseThresholdMatchesScript: the script's DENSE is DenseDayEvents.
func TestDenseThresholdMatchesScript(t *testing.T) {
	if want := "local DENSE = " + strconv.Itoa(redis.DenseDayEvents) + "\n"; !strings.Contains(redis.SumScript(), want) {
		t.Errorf("the summed script does not say %q", strings.TrimSpace(want))
	}
}

// TestDenseDayMakesClaimHashesHashTables: once a day holds DenseDayEvents
// events, the call that finds it so asks for the day's claim hashes; the
// next carries them and makes every one a hash table expiring with the
// day (a key of another type under a claim hash's name is left as it is,
// and the call still counts), and sets the dense marker. Claims stay exact
// across the change: a re-sent id is refused, a new one counted once.
func TestDenseDayMakesClaimHashesHashTables(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	day := tokenledger.DateOf(noon())
	exp := s.ExpireAt(day).Unix()
	p := s.Prefix() + ":{" + string(day) + "}:"
	dense, totals := p+redis.KindClaimDense, p+redis.KindTotals
	add := func(evs []tokenledger.Event) tokenledger.AddResult {
		t.Helper()
		res, err := s.Add(ctx, storetest.Batch(evs))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	encodings := func() map[string]int {
		t.Helper()
		out := map[string]int{}
		for _, k := range scanKeys(t, c, p+redis.KindIDs+"*") {
			out[c.ObjectEncoding(ctx, k).Val()]++
		}
		return out
	}
	count := func() int64 {
		t.Helper()
		n, err := c.HGet(ctx, totals, redis.CodeRequests).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	first := summedBatch("dn-a-", 300)
	add(first)
	add(summedBatch("dn-b-", 300)) // sets the claim-expiry marker
	if enc := encodings(); enc["hashtable"] != 0 || enc["listpack"] == 0 {
		t.Fatalf("a day of 600 events has claim hashes %v, want listpacks only", enc)
	}
	// The day is made nearly dense by its count alone: the claims of the
	// events it pretends to hold would take minutes to write.
	base := int64(redis.DenseDayEvents - 100)
	if err := c.HSet(ctx, totals, redis.CodeRequests, base).Err(); err != nil {
		t.Fatal(err)
	}

	add(summedBatch("dn-c-", 300)) // finds the day dense, without the claim hashes
	if n, _ := c.Exists(ctx, dense).Result(); n != 0 {
		t.Error("a call without the claim hashes set the dense marker")
	}
	if enc := encodings(); enc["hashtable"] != 0 {
		t.Errorf("a call without the claim hashes converted some: %v", enc)
	}
	// A key of another type under the name of a claim hash that the next
	// call does not claim in: the conversion leaves it, and the call counts.
	inUse := bucketsOf(s.Prefix(), day, append(append(summedBatch("dn-a-", 300), summedBatch("dn-b-", 300)...), append(summedBatch("dn-c-", 300), summedBatch("dn-d-", 300)...)...))
	stranger := ""
	for b := range redis.ClaimBuckets {
		if k := fmt.Sprintf("%s%s%d", p, redis.KindIDs, b); !inUse[k] {
			stranger = k
			break
		}
	}
	if err := c.Set(ctx, stranger, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	add(summedBatch("dn-d-", 300)) // carries them
	if typ := c.Type(ctx, stranger).Val(); typ != "string" {
		t.Errorf("the conversion made the string %s a %s", stranger, typ)
	}
	if err := c.Del(ctx, stranger).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get(ctx, dense).Result(); v != strconv.FormatInt(exp, 10) {
		t.Errorf("after the call that carried the claim hashes the dense marker holds %q, want %d", v, exp)
	}
	if at, _ := c.ExpireTime(ctx, dense).Result(); int64(at/time.Second) != exp {
		t.Errorf("the dense marker expires at %d, want %d", at/time.Second, exp)
	}
	if enc := encodings(); enc["hashtable"] != redis.ClaimBuckets-1 || len(enc) != 1 {
		t.Errorf("the dense day's claim hashes are %v, want all %d but the string's hash tables", enc, redis.ClaimBuckets-1)
	}
	allExpireAt(t, c, s.Prefix(), day, exp, "after the conversion")
	if got, want := count(), base+600; got != want {
		t.Errorf("the day counts %d events, want %d", got, want)
	}

	// Exact across the change: ids claimed in listpacks are refused, a new
	// id among them counts once, and a later summed call sets no expiry.
	if res := add(first); res.Accepted() != 0 {
		t.Errorf("re-sending the day's first batch accepted %d events, want 0", res.Accepted())
	}
	mixed := append(summedBatch("dn-a-", 50), summedBatch("dn-e-", 1)...)
	if res := add(mixed); res.Accepted() != 1 || !res.New[50] {
		t.Errorf("50 re-sent ids and one new one: accepted %d (new %v at the end), want only the new one", res.Accepted(), res.New[50])
	}
	before := commandCalls(t, c, "expireat")
	add(summedBatch("dn-f-", 300)) // summed: the two calls before went per event
	if n := commandCalls(t, c, "expireat") - before; n != 0 {
		t.Errorf("calls of a converted day whose claim hashes all exist ran %d EXPIREATs, want none", n)
	}
	if got, want := count(), base+901; got != want {
		t.Errorf("the day counts %d events, want %d", got, want)
	}
}
