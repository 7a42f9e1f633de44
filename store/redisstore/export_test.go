package redisstore

// SetCombine turns the combiner on or off for stores opened afterwards
// (benchmarks compare the two; tests run with it on).
func SetCombine(on bool) { combine = on }
