// Package faulttest holds tokenledger's multi-process tests: they build the
// tokenledger binary once, run several `tokenledger serve` processes on real
// redis-servers (internal/testkit/redistest), break things — SIGKILL and SIGSTOP of
// Redis and of tokenledger, flaky REST fronts, concurrent migrations — and
// then check exact totals over HTTP. The package has no code of its own;
// everything is in its _test.go files (helpers_test.go holds the helpers).
//
// The child binary is built without the race detector, so that the tests
// stay fast; the test binary itself runs with -race as every other package
// does. Set FAULTTEST_CHILD_RACE=1 to build the child with -race too.
package faulttest
