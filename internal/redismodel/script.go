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
//
// v2 (against v1), for calls that carry many events (the combiner merges
// concurrent calls of one day): the increments of a call's new events are
// summed per hash field and written with one HINCRBY per distinct field and
// one SADD per set, instead of one HINCRBY per event and field; the users,
// userset and sessions keys are type-checked only when an event of the call
// could write them, and the totals hash by the HMGET the overflow guard
// needs anyway. The keys, fields and values written are exactly v1's, so
// v1, v2 and their readers share a database.
const addScript = `-- tokenledger add v2: count one UTC day's new events.
-- KEYS[1] totals hash, KEYS[2] models hash, KEYS[3] users hash,
-- KEYS[4] user set, KEYS[5] session set, KEYS[6..] one claim key per event.
-- ARGV[1] expiry of every key (unix seconds: start of day D+R+1), then per
-- event: model, userId, sessionId, promptTokens, completionTokens,
-- totalTokens, cacheReadTokens, cacheWriteTokens, reasoningTokens, cost
-- (nano-dollars). An empty userId or sessionId means none.
-- Returns one integer per event: 1 counted now, 0 counted before (an id
-- twice in one call counts at its first place only).
local n = #KEYS - 5
if n < 1 or #ARGV ~= 1 + 10 * n then
  return redis.error_reply('ERR tokenledger add: expected 5 day keys, a claim key per event and 1 + 10 values per event')
end
local exp = ARGV[1]
-- Event e (1-based) has its values at ARGV[b + 1 .. b + 10], b = 1 + 10(e - 1).

-- Preconditions, checked before the first write.
-- Every number a plain decimal integer below 10^16; num[i] is ARGV[i]'s value.
local num = {}
local add = {0, 0, 0, 0, 0, 0, 0}
local anyUser, anySession = false, false
for b = 1, 10 * n, 10 do
  for j = b + 4, b + 10 do
    local v = ARGV[j]
    if #v > 16 or (v ~= '0' and not string.match(v, '^[1-9]%d*$')) then
      return redis.error_reply('ERR tokenledger add: event ' .. ((b - 1) / 10 + 1) .. ' value ' .. (j - b) .. ' is not a decimal integer from 0 to 10^16')
    end
    num[j] = tonumber(v)
  end
  add[1] = add[1] + num[b + 6]
  add[2] = add[2] + num[b + 4]
  add[3] = add[3] + num[b + 5]
  add[4] = add[4] + num[b + 7]
  add[5] = add[5] + num[b + 8]
  add[6] = add[6] + num[b + 9]
  add[7] = add[7] + num[b + 10]
  if ARGV[b + 2] ~= '' then anyUser = true end
  if ARGV[b + 3] ~= '' then anySession = true end
end
-- No key the call may write holds a value of the wrong type. The totals
-- hash is checked by the HMGET below, which fails on anything but a hash.
local function wrongType(i, t, want)
  return redis.error_reply('WRONGTYPE tokenledger key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want)
end
local function check(i, want)
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want then return wrongType(i, t, want) end
end
local bad = check(2, 'hash')
if not bad and anyUser then bad = check(3, 'hash') or check(4, 'set') end
if not bad and anySession then bad = check(5, 'set') end
if bad then return bad end
-- No counter may overflow: every per-model and per-user counter is at most
-- the day's total of the same kind, so checking the totals is enough.
-- Refusing to reach 2^62 leaves a margin far above the rounding of
-- Lua's doubles, so no call can take a counter past 2^63 - 1.
local fields = {'t', 'p', 'c', 'cr', 'cw', 'r', '$'}
local cur = redis.pcall('HMGET', KEYS[1], unpack(fields))
if cur['err'] then
  local t = redis.call('TYPE', KEYS[1])['ok']
  if t ~= 'hash' then return wrongType(1, t, 'hash') end
  return cur
end
for f = 1, 7 do
  if (tonumber(cur[f]) or 0) + add[f] >= 2^62 then
    return redis.error_reply('ERR tokenledger add: counter ' .. fields[f] .. ' of ' .. KEYS[1] .. ' would overflow')
  end
end

-- Writes. First the claims: new lists the b of each new event.
local out, new = {}, {}
for e = 1, n do
  if redis.call('SET', KEYS[5 + e], '1', 'NX', 'EXAT', exp) then
    new[#new + 1] = 1 + 10 * (e - 1)
    out[e] = 1
  else
    out[e] = 0
  end
end
if #new == 0 then return out end
-- each calls fn(h, field, value, number) for every increment event b makes
-- to hash KEYS[h] (1 totals, 2 models, 3 users).
local function each(b, h, fn)
  if h == 1 then
    fn(1, 't', ARGV[b + 6], num[b + 6])
    fn(1, 'p', ARGV[b + 4], num[b + 4])
    fn(1, 'c', ARGV[b + 5], num[b + 5])
    fn(1, 'n', '1', 1)
    if num[b + 7] > 0 then fn(1, 'cr', ARGV[b + 7], num[b + 7]) end
    if num[b + 8] > 0 then fn(1, 'cw', ARGV[b + 8], num[b + 8]) end
    if num[b + 9] > 0 then fn(1, 'r', ARGV[b + 9], num[b + 9]) end
    if num[b + 10] > 0 then fn(1, '$', ARGV[b + 10], num[b + 10]) end
    return
  end
  local name = ARGV[b + h - 1] -- the model (any, even empty), or the userId
  if h == 3 and name == '' then return end
  fn(h, 't|' .. name, ARGV[b + 6], num[b + 6])
  fn(h, 'p|' .. name, ARGV[b + 4], num[b + 4])
  fn(h, 'c|' .. name, ARGV[b + 5], num[b + 5])
  fn(h, 'n|' .. name, '1', 1)
  if num[b + 10] > 0 then fn(h, '$|' .. name, ARGV[b + 10], num[b + 10]) end
end
local function hincrby(h, field, v)
  redis.call('HINCRBY', KEYS[h], field, v)
end
if #new == 1 then
  for h = 1, 3 do each(new[1], h, hincrby) end
else
  -- One HINCRBY per field: a lone value as sent, several summed. A sum
  -- is exact while it stays below 2^53 (the values are integers, none
  -- negative, so a sum that ends below 2^53 never rounded); a hash with
  -- a field past that gets one HINCRBY per event and field instead.
  local order, sum, lone, exact = {{}, {}, {}}, {{}, {}, {}}, {{}, {}, {}}, {true, true, true}
  local function bump(h, field, v, x)
    local s = sum[h][field]
    if s then
      s = s + x
      lone[h][field] = false
    else
      local o = order[h]
      o[#o + 1] = field
      s = x
      lone[h][field] = v
    end
    sum[h][field] = s
    if s >= 9007199254740992 then exact[h] = false end
  end
  for i = 1, #new do
    for h = 1, 3 do each(new[i], h, bump) end
  end
  for h = 1, 3 do
    if exact[h] then
      local o, s, l = order[h], sum[h], lone[h]
      for i = 1, #o do
        local f = o[i]
        redis.call('HINCRBY', KEYS[h], f, l[f] or string.format('%.0f', s[f]))
      end
    else
      for i = 1, #new do each(new[i], h, hincrby) end
    end
  end
end
redis.call('EXPIREAT', KEYS[1], exp)
redis.call('EXPIREAT', KEYS[2], exp)
-- members adds the new events' non-empty ARGV[b + j] to set KEYS[k], each
-- once, and reports whether there was any.
local function members(k, j)
  local list, seen = {}, {}
  for i = 1, #new do
    local m = ARGV[new[i] + j]
    if m ~= '' and not seen[m] then
      seen[m] = true
      list[#list + 1] = m
    end
  end
  if #list == 0 then return false end
  redis.call('SADD', KEYS[k], unpack(list))
  redis.call('EXPIREAT', KEYS[k], exp)
  return true
end
if members(4, 2) then redis.call('EXPIREAT', KEYS[3], exp) end
members(5, 3)
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
