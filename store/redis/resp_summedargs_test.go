package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
)

// TestSummedScriptRefusesBadSums: the summed script takes a model's or a
// user's sum only as a plain decimal integer below 2^62; any other value
// (sent by a caller other than the store, which never sends one) fails
// the call with a sentence naming the record, before anything is
// written. The same call with good sums counts.
func TestSummedScriptRefusesBadSums(t *testing.T) {
	srv := redistest.Server(t)
	c := raw(t, srv.Addr())
	ctx := context.Background()
	s := open(t, redis.RedisOptions{URL: srv.URL()})
	day := tokenledger.DateOf(noon())
	p := s.Prefix() + ":{" + string(day) + "}:"
	ids := []string{"sa-1", "sa-2"}
	keys := []string{p + redis.KindTotals, p + redis.KindModels, p + redis.KindUsers, p + redis.KindUserSet, p + redis.KindSessions, p + redis.KindClaimExpiry, p + redis.KindClaimDense}
	for _, id := range ids {
		keys = append(keys, p+redis.KindID+id)
	}
	for _, id := range ids {
		keys = append(keys, fmt.Sprintf("%s%s%d", p, redis.KindIDs, redis.ClaimBucket(redis.ClaimField(id))))
	}
	// Two events of model m and user u, 2 prompt and 1 completion tokens.
	call := func(model, user []string) []any {
		args := []any{strconv.FormatInt(s.ExpireAt(day).Unix(), 10), "1", "1", "0", "0", "1"} // with the v6 claim keys
		for _, id := range ids {
			args = append(args, redis.ClaimField(id))
		}
		for _, v := range []string{"6", "4", "2", "0", "0", "0", "0", "2", "0", "0", "0"} {
			args = append(args, v)
		}
		for _, rec := range [][]string{model, user} {
			for _, v := range rec {
				args = append(args, v)
			}
		}
		return args
	}
	good := func(name string) []string { return []string{name, "6", "4", "2", "2", "0", "0", "0", "0"} }
	bad := []string{"", "01", "00", "-1", "+1", "1.5", "1e3", " 1", "1 ", "1 2", "0x1", "abc", "١", "12345678901234567890", "4611686018427387904"}
	for _, v := range bad {
		for slot := 1; slot <= 8; slot += 3 { // t, n and pt
			for who, name := range []string{"m", "u"} {
				model, user := good("m"), good("u")
				rec := [][]string{model, user}[who]
				rec[slot] = v
				err := c.EvalSha(ctx, redis.SumScriptSHA(), keys, call(model, user)...).Err()
				want := "ERR tokenledger add: a sum of " + name + " is not a decimal integer from 0 to 2^62"
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("sum %q at %d of %s: err = %v, want %q", v, slot, name, err, want)
				}
			}
		}
	}
	if left := scanKeys(t, c, s.Prefix()+":*"); len(left) != 0 {
		t.Fatalf("refused calls left keys: %v", left)
	}
	// Sums at the edges are taken.
	model, user := good("m"), good("u")
	model[5] = "9007199254740993" // 2^53 + 1: more than a Lua number holds exactly
	v, err := c.EvalSha(ctx, redis.SumScriptSHA(), keys, call(model, user)...).Int64()
	if err != nil || (v != 1 && v != 2) {
		t.Fatalf("the good call answered %d, %v; want 1 or 2", v, err)
	}
	if n, _ := c.HGet(ctx, p+redis.KindModels, "$|m").Result(); n != "9007199254740993" {
		t.Errorf("model m's cost is %q, want 9007199254740993", n)
	}
	if n, _ := c.HGet(ctx, p+redis.KindTotals, redis.CodeRequests).Result(); n != "2" {
		t.Errorf("the day counts %q events, want 2", n)
	}
}
