package redis

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
)

// ArgsPerEvent is how many ARGV values the script takes per event.
const ArgsPerEvent = 12

// KeysPerEvent is how many KEYS the script takes per event: its v6 claim
// key and its claim hash (claims.go).
const KeysPerEvent = 2

// DayKeys is how many day-level keys lead KEYS in a script call.
const DayKeys = 5

// MaxEventsPerCall bounds the events one script call carries: a day's
// events beyond it go into further calls of the same pipeline. It is the
// largest batch the HTTP API takes, so that a batch's day is one call: the
// script's work per call grows with the distinct models and users it
// writes, not with its events, and splitting a batch of 1,000 into four
// calls cost 2.3 times the Redis CPU per event (BENCHMARKS.md). Such a
// call holds the server for about 10 ms.
const MaxEventsPerCall = 1000

// addScript counts one UTC day's new events atomically. It checks every
// precondition before its first write, so a call either fails before
// writing anything or claims and counts every new event it carries: a claim
// never exists without its counters. Its versions and what each changed:
// docs/redis.md "Script versions".
//
//go:embed add.lua
var addScript string

// AddScript returns the Lua source of the add script.
func AddScript() string { return addScript }

// addSHA is the SHA-1 of addScript, the name EVALSHA runs it by.
var addSHA = func() string {
	h := sha1.Sum([]byte(addScript))
	return hex.EncodeToString(h[:])
}()

// AddScriptSHA returns the SHA-1 digest of the add script, as EVALSHA and
// SCRIPT LOAD name it.
func AddScriptSHA() string { return addSHA }
