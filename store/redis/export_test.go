package redis

import goredis "github.com/redis/go-redis/v9"

// SetCombine turns the combiner on or off for stores opened afterwards
// (benchmarks compare the two; tests run with it on).
func SetCombine(on bool) { combine = on }

// SetMerge turns the merging of concurrent add calls of one day on or off
// for stores opened afterwards (benchmarks compare the two; tests run with
// it on).
func SetMerge(on bool) { merge = on }

// SetReadCache turns the cache of read days on or off for stores opened
// afterwards (benchmarks compare the two; tests run with it on).
func SetReadCache(on bool) { readCache = on }

// Queued returns how many calls wait for a flusher.
func Queued(s *Store) int { return len(s.comb.queue) }

// ClientOptions returns the go-redis options of a single-server store.
func ClientOptions(s *Store) *goredis.Options { return s.resp.ServerOptions() }
