package redis_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// quiet drops the store's log lines.
var quiet = slog.New(slog.DiscardHandler)

// factory returns a storetest factory of stores on opts' server, each under
// a fresh prefix.
func factory(base redis.RedisOptions) storetest.Factory {
	return func(t *testing.T, o storetest.Options) tokenledger.Store {
		opts := base
		opts.KeyPrefix = redistest.Prefix()
		opts.RetentionDays = o.RetentionDays
		opts.Now = o.Now
		opts.Logger = quiet
		s, err := redis.OpenRedis(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	srv := redistest.Shared(t)
	storetest.Run(t, factory(redis.RedisOptions{URL: srv.URL()}))
}

func TestConformanceCluster(t *testing.T) {
	c := redistest.SharedCluster(t)
	storetest.Run(t, factory(redis.RedisOptions{ClusterNodes: c.Addrs()}))
}
