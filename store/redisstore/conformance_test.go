package redisstore_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redisstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// quiet drops the store's log lines.
var quiet = slog.New(slog.DiscardHandler)

// factory returns a storetest factory of stores on opts' server, each under
// a fresh prefix.
func factory(base redisstore.Options) storetest.Factory {
	return func(t *testing.T, o storetest.Options) tokenledger.Store {
		opts := base
		opts.KeyPrefix = redistest.Prefix()
		opts.RetentionDays = o.RetentionDays
		opts.Now = o.Now
		opts.Logger = quiet
		s, err := redisstore.Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	srv := redistest.Shared(t)
	storetest.Run(t, factory(redisstore.Options{URL: srv.URL()}))
}

func TestConformanceCluster(t *testing.T) {
	c := redistest.SharedCluster(t)
	storetest.Run(t, factory(redisstore.Options{ClusterNodes: c.Addrs()}))
}
