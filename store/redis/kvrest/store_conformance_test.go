package kvrest_test

import (
	"context"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// TestConformance runs the Store contract through kvrest → the REST front
// → a real redis-server. (The failure behaviour, timeouts included, is
// tested in failure_test.go.)
func TestConformance(t *testing.T) {
	f := front(t)
	storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store {
		s, err := redis.OpenKVRest(context.Background(), redis.KVRestOptions{
			URL: f.URL(), Token: f.Token(), Prefix: redistest.Prefix(),
			RetentionDays: o.RetentionDays, Now: o.Now, Logger: quiet, Timeout: testTimeout,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
