package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// The reset marker holds a time by the database's clock (Redis TIME), not
// by the clock of the instance that reset: instances' clocks differ, and
// the fallback spool compares the marker with when it spooled each event
// (see resetTimes). docs/redis.md, "Clock skew", says why.

// markResetScript sets the reset marker (KEYS[1]) to the server's time in
// Unix milliseconds, for ARGV[1] seconds, and returns it. A time not after
// the marker's current one (two resets in one millisecond, or a clock set
// back) becomes that one plus 1, so every reset has its own value: the
// read cache tells resets apart by it.
const markResetScript = `local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = tonumber(redis.call('GET', KEYS[1]) or '')
if prev and prev >= ms then ms = prev + 1 end
local v = string.format('%d', ms)
redis.call('SET', KEYS[1], v, 'EX', tonumber(ARGV[1]))
return v`

// resetTimesScript returns the reset marker (KEYS[1]; false when missing)
// and the server's TIME, read together on the node that holds the marker.
const resetTimesScript = `local t = redis.call('TIME')
return {redis.call('GET', KEYS[1]), t[1], t[2]}`

// markReset records the start of a reset, by the database's clock, and
// returns the marker's new value.
func (c *Store) markReset(ctx context.Context, op string, ttl int64) (string, error) {
	replies, err := c.do(ctx, op, [][]any{{"EVAL", markResetScript, "1", c.keys.Mark(resetMark), ttl}})
	if err != nil {
		return "", err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return "", c.replyFail(op+": record the time", e)
	}
	stamp, ok := replies[0].(string)
	if _, err := strconv.ParseInt(stamp, 10, 64); !ok || err != nil {
		return "", fmt.Errorf("%s: %s: record the time: the server answered %v, not a time in Unix milliseconds", c.server, op, replies[0])
	}
	return stamp, nil
}

// resetTimes returns when a reset last ran (the zero time when none did
// within the last R + 1 days) and the time now, both by the database's
// clock, in one round trip: comparing how long ago each was with how long
// ago something happened by another clock needs no agreement of clocks.
func (c *Store) resetTimes(ctx context.Context) (reset, now time.Time, err error) {
	const op = "read the time of the last reset"
	key := c.keys.Mark(resetMark)
	replies, err := c.do(ctx, op, [][]any{{"EVAL", resetTimesScript, "1", key}})
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if e, ok := replies[0].(ReplyError); ok {
		return time.Time{}, time.Time{}, c.replyFail(op, e)
	}
	r, _ := replies[0].([]any)
	if len(r) != 3 {
		return time.Time{}, time.Time{}, fmt.Errorf("%s: %s: the server answered %v, not the marker and its time", c.server, op, replies[0])
	}
	sec, err1 := toInt(r[1])
	usec, err2 := toInt(r[2])
	if err1 != nil || err2 != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%s: %s: the server's TIME answer %v is not a time", c.server, op, r[1:])
	}
	now = time.Unix(sec, usec*1000).UTC()
	if r[0] == nil {
		return time.Time{}, now, nil
	}
	ms, err := toInt(r[0])
	if err != nil || ms < 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("%s: %s: key %s does not hold a time in Unix milliseconds", c.server, op, key)
	}
	return time.UnixMilli(ms).UTC(), now, nil
}
