// Package redismodel is what every Redis-backed tokenledger store shares:
// the key layout, the Lua script that counts events, how commands are built
// and replies read, and Core, a complete store over a tiny transport
// interface (Doer). The Redis-protocol store (store/redisstore) and the
// Upstash REST store are thin adapters that supply a Doer, so one database
// reads the same through either. docs/redis.md describes the layout.
package redis

import (
	"context"
	"strings"
)

// Doer runs commands against one Redis database.
//
// Do sends cmds in one round trip (a pipeline) and returns one reply per
// command, in order. A command is its name followed by its arguments, each a
// string or an int64 (sent as its decimal text). A reply is an int64 (integer
// reply), a string (bulk or status reply), nil (nil reply), a []any (array
// reply, RESP2 shape: HGETALL is a flat field/value list) or a ReplyError
// (the command's own Redis error). Do returns a non-nil error only when the
// round trip itself failed (the server could not be reached, did not answer
// in time, or ctx ended); then no reply is trustworthy, and some commands may
// have run.
//
// A Doer over a Redis Cluster routes each command by its first key; every
// command Core sends with keys has all its keys in one slot.
type Doer interface {
	Do(ctx context.Context, cmds [][]any) ([]any, error)
}

// Nodes is implemented by a Doer whose keys live on several servers, such as
// a Redis Cluster. ForEachNode calls fn once for every master, possibly
// concurrently, with a Doer that sends commands to that master only (for
// keyless commands: SCAN, SCRIPT LOAD). It returns the first error fn
// returned, or an error when the masters could not be listed. A Doer with a
// single endpoint (one server, or a REST API that hides its shards) need not
// implement it: Core then treats the Doer itself as the only node.
type Nodes interface {
	ForEachNode(ctx context.Context, fn func(ctx context.Context, node Doer) error) error
}

// ReplyError is a Redis error reply to one command, such as
// "NOSCRIPT No matching script." or "WRONGTYPE Operation against a key…".
type ReplyError string

// Error returns the server's message.
func (e ReplyError) Error() string { return string(e) }

// Code returns the error's first word, such as "NOSCRIPT" or "ERR".
func (e ReplyError) Code() string {
	s := string(e)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

// unavailableCodes are the Redis error codes that mean the server cannot
// serve now (loading, busy, failing over, out of memory, refusing writes,
// refusing us), as opposed to a problem with the data or the command.
var unavailableCodes = map[string]bool{
	"LOADING": true, "BUSY": true, "CLUSTERDOWN": true, "TRYAGAIN": true,
	"MASTERDOWN": true, "READONLY": true, "OOM": true, "NOREPLICAS": true,
	"MISCONF": true, "NOAUTH": true, "WRONGPASS": true, "NOPERM": true,
	"MOVED": true, "ASK": true,
}

// Unavailable reports whether the error reply means the server cannot serve
// now, so that the caller should treat the store as unavailable.
func (e ReplyError) Unavailable() bool { return unavailableCodes[e.Code()] }
