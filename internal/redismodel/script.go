package redismodel

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
)

// ArgsPerEvent is how many ARGV values the script takes per event.
const ArgsPerEvent = 10

// DayKeys is how many day-level keys lead KEYS in a script call.
const DayKeys = 5

// MaxEventsPerCall bounds the events one script call carries, so that a
// large batch never holds the Redis server for long; a day's events beyond
// it go into further calls of the same pipeline.
const MaxEventsPerCall = 256

// addScript counts one UTC day's new events atomically. It checks every
// precondition before its first write, so a call either fails before
// writing anything or claims and counts every new event it carries: a claim
// never exists without its counters.
const addScript = `-- tokenledger add v1: count one UTC day's new events.
-- KEYS[1] totals hash, KEYS[2] models hash, KEYS[3] users hash,
-- KEYS[4] user set, KEYS[5] session set, KEYS[6..] one claim key per event.
-- ARGV[1] expiry of every key (unix seconds: start of day D+R+1), then per
-- event: model, userId, sessionId, promptTokens, completionTokens,
-- totalTokens, cacheReadTokens, cacheWriteTokens, reasoningTokens, cost
-- (nano-dollars). An empty userId or sessionId means none.
-- Returns one integer per event: 1 counted now, 0 counted before.
local n = #KEYS - 5
if n < 1 or #ARGV ~= 1 + 10 * n then
  return redis.error_reply('ERR tokenledger add: expected 5 day keys, a claim key per event and 1 + 10 values per event')
end
local exp = ARGV[1]

-- Preconditions, checked before the first write.
local kinds = {'hash', 'hash', 'hash', 'set', 'set'}
for i = 1, 5 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= kinds[i] then
    return redis.error_reply('WRONGTYPE tokenledger key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. kinds[i])
  end
end
-- No counter may overflow: every per-model and per-user counter is at most
-- the day's total of the same kind, so checking the totals is enough.
local fields = {'t', 'p', 'c', 'cr', 'cw', 'r', '$'}
local argof = {6, 4, 5, 7, 8, 9, 10}
local add = {0, 0, 0, 0, 0, 0, 0}
for e = 0, n - 1 do
  local b = 1 + e * 10
  for j = 4, 10 do
    local v = ARGV[b + j]
    if #v > 16 or (v ~= '0' and not string.match(v, '^[1-9]%d*$')) then
      return redis.error_reply('ERR tokenledger add: event ' .. (e + 1) .. ' value ' .. j .. ' is not a decimal integer from 0 to 10^16')
    end
  end
  for f = 1, 7 do
    add[f] = add[f] + tonumber(ARGV[b + argof[f]])
  end
end
-- Refusing to reach 2^62 leaves a margin far above the rounding of
-- Lua's doubles, so no call can take a counter past 2^63 - 1.
local cur = redis.call('HMGET', KEYS[1], unpack(fields))
for f = 1, 7 do
  if (tonumber(cur[f]) or 0) + add[f] >= 2^62 then
    return redis.error_reply('ERR tokenledger add: counter ' .. fields[f] .. ' of ' .. KEYS[1] .. ' would overflow')
  end
end

-- Writes.
local out = {}
local any, users, sessions = false, false, false
for e = 0, n - 1 do
  local b = 1 + e * 10
  if redis.call('SET', KEYS[6 + e], '1', 'NX', 'EXAT', exp) then
    any = true
    local model, user, sess = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
    local p, c, t = ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
    local cr, cw, r, cost = ARGV[b + 7], ARGV[b + 8], ARGV[b + 9], ARGV[b + 10]
    redis.call('HINCRBY', KEYS[1], 't', t)
    redis.call('HINCRBY', KEYS[1], 'p', p)
    redis.call('HINCRBY', KEYS[1], 'c', c)
    redis.call('HINCRBY', KEYS[1], 'n', 1)
    if cr ~= '0' then redis.call('HINCRBY', KEYS[1], 'cr', cr) end
    if cw ~= '0' then redis.call('HINCRBY', KEYS[1], 'cw', cw) end
    if r ~= '0' then redis.call('HINCRBY', KEYS[1], 'r', r) end
    if cost ~= '0' then redis.call('HINCRBY', KEYS[1], '$', cost) end
    redis.call('HINCRBY', KEYS[2], 't|' .. model, t)
    redis.call('HINCRBY', KEYS[2], 'p|' .. model, p)
    redis.call('HINCRBY', KEYS[2], 'c|' .. model, c)
    redis.call('HINCRBY', KEYS[2], 'n|' .. model, 1)
    if cost ~= '0' then redis.call('HINCRBY', KEYS[2], '$|' .. model, cost) end
    if user ~= '' then
      users = true
      redis.call('HINCRBY', KEYS[3], 't|' .. user, t)
      redis.call('HINCRBY', KEYS[3], 'p|' .. user, p)
      redis.call('HINCRBY', KEYS[3], 'c|' .. user, c)
      redis.call('HINCRBY', KEYS[3], 'n|' .. user, 1)
      if cost ~= '0' then redis.call('HINCRBY', KEYS[3], '$|' .. user, cost) end
      redis.call('SADD', KEYS[4], user)
    end
    if sess ~= '' then
      sessions = true
      redis.call('SADD', KEYS[5], sess)
    end
    out[e + 1] = 1
  else
    out[e + 1] = 0
  end
end
if any then
  redis.call('EXPIREAT', KEYS[1], exp)
  redis.call('EXPIREAT', KEYS[2], exp)
  if users then
    redis.call('EXPIREAT', KEYS[3], exp)
    redis.call('EXPIREAT', KEYS[4], exp)
  end
  if sessions then
    redis.call('EXPIREAT', KEYS[5], exp)
  end
end
return out
`

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

// evalCommand builds an EVALSHA (or, with source set, EVAL) call of the add
// script for keys and args.
func evalCommand(keys []string, args []any, source bool) []any {
	cmd := make([]any, 0, 3+len(keys)+len(args))
	if source {
		cmd = append(cmd, "EVAL", addScript)
	} else {
		cmd = append(cmd, "EVALSHA", addSHA)
	}
	cmd = append(cmd, strconv.Itoa(len(keys)))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	return append(cmd, args...)
}
