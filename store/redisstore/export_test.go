package redisstore

// SetCombine turns the combiner on or off for stores opened afterwards
// (benchmarks compare the two; tests run with it on).
func SetCombine(on bool) { combine = on }

// SetMerge turns the merging of concurrent add calls of one day on or off
// for stores opened afterwards (benchmarks compare the two; tests run with
// it on).
func SetMerge(on bool) { merge = on }

// Queued returns how many calls wait for a flusher.
func Queued(s *Store) int { return len(s.comb.queue) }
