// Package wire is what the Redis store (store/redis) and its two
// transports (resp, kvrest) share: the shape of a command and its replies,
// and the interfaces a transport implements. It knows nothing of
// tokenledger.
package wire

import (
	"context"
	"strings"
)

// Pipeline runs commands against one Redis database.
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
// A Pipeline over a Redis Cluster routes each command by its first key;
// every command the store sends with keys has all its keys in one slot.
type Pipeline interface {
	Do(ctx context.Context, cmds [][]any) ([]any, error)
}

// Nodes reaches every master of a database whose keys live on several
// servers (a Redis Cluster). ForEachNode calls fn once for every master,
// possibly concurrently, with a Pipeline to that master only (for keyless
// commands: SCAN, SCRIPT LOAD). It returns the first error fn returned, or
// an error when the masters could not be listed.
type Nodes interface {
	ForEachNode(ctx context.Context, fn func(ctx context.Context, node Pipeline) error) error
}

// Sender is a Pipeline that answers each command on its own, for the
// store's combiner, which sends several callers' commands in one round
// trip: errs[i] is the transport error that kept command i from an answer
// (nil when it has one), err is set only when the round trip failed as a
// whole. wait, when not nil, marks the writes that the transport holds
// until replicas have them, if it is configured to (Redis WAIT).
type Sender interface {
	Pipeline
	Send(ctx context.Context, cmds [][]any, wait []bool) (out []any, errs []error, err error)
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
