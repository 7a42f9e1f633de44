package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/redismodel"
)

// claimOf returns the v6 claim key, the claim hash and the claim field of
// id on day under prefix p.
func claimOf(p string, day tokenledger.Date, id string) (old, bucket, field string) {
	k, err := redismodel.NewKeys(p)
	if err != nil {
		panic(err)
	}
	return k.Claim(day, id)
}

// countClaims returns how many ids are claimed on day under prefix p: the
// fields of its claim hashes plus its claim keys (v6, or too long an id).
func countClaims(t testing.TB, c redis.Cmdable, p string, day tokenledger.Date) int {
	t.Helper()
	n := len(scanKeys(t, c, p+":{"+string(day)+"}:"+redismodel.KindID+"*"))
	for _, h := range scanKeys(t, c, p+":{"+string(day)+"}:"+redismodel.KindIDs+"*") {
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
func isClaimed(t testing.TB, c redis.Cmdable, p string, day tokenledger.Date, id string) bool {
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
