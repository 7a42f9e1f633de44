-- tokenledger add v8 (summed): count one UTC day's events, summed by the
-- caller, when every id in the call is new; otherwise write nothing.
-- KEYS as v7: totals hash, models hash, users hash, user set, session set,
-- then two keys per event: its v6 claim key and its claim hash.
-- ARGV[1] expiry of every key (unix seconds), ARGV[2] M models, ARGV[3] U
-- users, ARGV[4] S sessions; then per event its claim field (never '');
-- then the call's sums: the day's t p c cr cw r $ n pc pt pu; M records of
-- a model's name and its t p c n $ pc pt pu; U such records of a userId;
-- the S distinct sessionIds. Optionally a last value: the call's claim
-- token (a decimal integer of 5 to 19 digits).
-- Returns 1 when every id was new and the sums were written; 0 when an id
-- was claimed before (or twice in the call): then nothing was written and
-- the caller sends the events with the per-event script (v7).
local n = (#KEYS - 5) / 2
local function refuse(msg)
  return redis.error_reply('ERR tokenledger add: ' .. msg)
end
local function count(v)
  if v and (v == '0' or (#v <= 4 and string.match(v, '^[1-9]%d*$'))) then return tonumber(v) end
end
local M, U, S = count(ARGV[2]), count(ARGV[3]), count(ARGV[4])
if n < 1 or n % 1 ~= 0 or not (M and U and S) then
  return refuse('expected 5 day keys, 2 claim keys per event, the expiry and the counts of models, users and sessions')
end
local base = 4 + n + 11 + 9 * M + 9 * U + S
if #ARGV ~= base and #ARGV ~= base + 1 then
  return refuse('expected 4 + 1 per event + 11 + 9 per model and user + 1 per session values, and optionally a claim token')
end
local exp, token = ARGV[1], nil
if #ARGV == base + 1 then
  token = ARGV[#ARGV]
  if not string.match(token, '^[1-9]%d%d%d%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$') then
    return refuse('the claim token is not a decimal integer of 5 to 19 digits')
  end
end
local T = 5 + n -- the day's sums are ARGV[T .. T + 10]
local R = T + 11 -- record r (0-based, models then users) is ARGV[R + 9r .. R + 9r + 8]
local Z = R + 9 * (M + U) -- the sessions are ARGV[Z .. Z + S - 1]

-- Preconditions, checked before the first write. Every sum a plain
-- decimal integer below 2^62.
local function sums(from, k)
  local out = {}
  for j = 0, k - 1 do
    local v = ARGV[from + j]
    if #v > 19 or (v ~= '0' and not string.match(v, '^[1-9]%d*$')) or tonumber(v) >= 2^62 then
      return nil
    end
    out[j + 1] = tonumber(v)
  end
  return out
end
local day = sums(T, 11)
if not day then return refuse('a sum of the day is not a decimal integer from 0 to 2^62') end
local function wrongType(i, t, want)
  return redis.error_reply('WRONGTYPE tokenledger key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want)
end
local exists = {}
local function check(i, want)
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want then return wrongType(i, t, want) end
  exists[i] = t ~= 'none'
end
local bad = check(2, 'hash')
if not bad and U > 0 then bad = check(3, 'hash') or check(4, 'set') end
if not bad and S > 0 then bad = check(5, 'set') end
if bad then return bad end
-- Every counter the call writes holds an integer HINCRBY takes, which the
-- call's sum cannot take to 2^62 (as v7).
local function counters(i, fields, add)
  local cur = redis.pcall('HMGET', KEYS[i], unpack(fields))
  if cur['err'] then
    local t = redis.call('TYPE', KEYS[i])['ok']
    if t ~= 'hash' then return wrongType(i, t, 'hash') end
    return cur
  end
  for f = 1, #fields do
    local v = cur[f]
    if v and v ~= '0' and not (#v <= 20 and string.match(v, '^[1-9]%d*$')) then
      return refuse('field ' .. fields[f] .. ' of ' .. KEYS[i] .. ' does not hold an integer from 0 to 2^62')
    end
    if (tonumber(v) or 0) + add[f] >= 2^62 then
      return refuse('counter ' .. fields[f] .. ' of ' .. KEYS[i] .. ' would overflow')
    end
  end
end
bad = counters(1, {'t', 'p', 'c', 'cr', 'cw', 'r', '$', 'n', 'pc', 'pt', 'pu'}, day)
if bad then return bad end
local codes = {'t', 'p', 'c', 'n', '$', 'pc', 'pt', 'pu'}
for r = 0, M + U - 1 do
  local b = R + 9 * r
  local add = sums(b + 1, 8)
  if not add then return refuse('a sum of ' .. ARGV[b] .. ' is not a decimal integer from 0 to 2^62') end
  local h = r < M and 2 or 3
  if exists[h] then
    local fields = {}
    for j = 1, 8 do fields[j] = codes[j] .. '|' .. ARGV[b] end
    bad = counters(h, fields, add)
    if bad then return bad end
  end
end

-- The claims: an id claimed before (by its v6 key or its field) means
-- the call writes nothing and answers 0. HSETNX claims each id; at the
-- first that fails, the claims made so far are taken back (the script
-- runs alone, so no one sees them).
local olds = {}
for e = 1, n do olds[e] = KEYS[4 + 2 * e] end
if redis.call('EXISTS', unpack(olds)) > 0 then return 0 end
local value = token or '1'
for e = 1, n do
  local r = redis.pcall('HSETNX', KEYS[5 + 2 * e], ARGV[4 + e], value)
  if r ~= 1 then
    for u = 1, e - 1 do redis.call('HDEL', KEYS[5 + 2 * u], ARGV[4 + u]) end
    return 0
  end
end
local done = {}
for e = 1, n do
  local k = KEYS[5 + 2 * e]
  if not done[k] then
    done[k] = true
    redis.call('EXPIREAT', k, exp)
  end
end

-- The counters: one HINCRBY per counter, as v7 writes them (t, p, c and n
-- always, the others when not 0).
local function hincrby(i, field, v)
  redis.call('HINCRBY', KEYS[i], field, v)
end
local dayCodes = {'t', 'p', 'c', 'cr', 'cw', 'r', '$', 'n', 'pc', 'pt', 'pu'}
for j = 1, 11 do
  local v = ARGV[T + j - 1]
  if j <= 3 or j == 8 or v ~= '0' then hincrby(1, dayCodes[j], v) end
end
for r = 0, M + U - 1 do
  local b = R + 9 * r
  local h = r < M and 2 or 3
  for j = 1, 8 do
    local v = ARGV[b + j]
    if j <= 4 or v ~= '0' then hincrby(h, codes[j] .. '|' .. ARGV[b], v) end
  end
end
redis.call('EXPIREAT', KEYS[1], exp)
redis.call('EXPIREAT', KEYS[2], exp)
if U > 0 then
  local list = {}
  for r = M, M + U - 1 do list[#list + 1] = ARGV[R + 9 * r] end
  redis.call('SADD', KEYS[4], unpack(list))
  redis.call('EXPIREAT', KEYS[4], exp)
  redis.call('EXPIREAT', KEYS[3], exp)
end
if S > 0 then
  redis.call('SADD', KEYS[5], unpack(ARGV, Z, Z + S - 1))
  redis.call('EXPIREAT', KEYS[5], exp)
end
return 1
