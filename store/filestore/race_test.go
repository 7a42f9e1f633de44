//go:build race

package filestore

// raceEnabled is true when the tests run with -race, which makes them
// several times slower; long tests do fewer rounds then.
const raceEnabled = true
