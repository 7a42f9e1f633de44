package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxWaitReplicas bounds TOKENLEDGER_REDIS_WAIT_REPLICAS: a Redis master
// with more replicas than this is not a setup anyone waits on.
const MaxWaitReplicas = 16

// loadWait reads TOKENLEDGER_REDIS_WAIT_REPLICAS and
// TOKENLEDGER_REDIS_WAIT_TIMEOUT (see docs/redis.md, "Failover and
// WAIT"). It runs after the store is chosen and DBTimeout is set: the
// wait applies to the Redis store only, and must end before the read
// timeout does, or the socket would time out first.
func (c *Config) loadWait(get func(string) string) error {
	const rv, tv = "TOKENLEDGER_REDIS_WAIT_REPLICAS", "TOKENLEDGER_REDIS_WAIT_TIMEOUT"
	if v := get(rv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || strings.Trim(v, "0123456789") != "" || n < 0 || n > MaxWaitReplicas {
			return fmt.Errorf("%s must be a whole number of replicas from 0 to %d, not %q", rv, MaxWaitReplicas, v)
		}
		c.RedisWaitReplicas = n
	}
	tval := get(tv)
	if c.RedisWaitReplicas == 0 {
		if tval != "" {
			return fmt.Errorf("%s is set but %s is not (or is 0); set the number of replicas too, or neither", tv, rv)
		}
		return nil
	}
	if c.Store != Redis {
		return fmt.Errorf("%s applies to the Redis store only (REDIS_URL, KV_URL or REDIS_CLUSTER_NODES), and the store is %s", rv, c.Store)
	}
	if tval == "" {
		c.RedisWaitTimeout = (c.DBTimeout / 2).Truncate(time.Millisecond)
		return nil
	}
	d, err := time.ParseDuration(tval)
	if err != nil || d < time.Millisecond || d >= c.DBTimeout || d%time.Millisecond != 0 {
		return fmt.Errorf("%s must be a whole number of milliseconds from 1ms to less than TOKENLEDGER_DB_TIMEOUT (%s), such as 500ms, not %q", tv, c.DBTimeout, tval)
	}
	c.RedisWaitTimeout = d
	return nil
}
