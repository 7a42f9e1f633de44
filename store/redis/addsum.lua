-- tokenledger add v11 (summed): count one UTC day's events, summed by the
-- caller, when every id in the call is new; otherwise write nothing.
-- KEYS: totals hash, models hash, users hash, user set, session set, the
-- day's claim-expiry marker, the day's dense marker; then, when ARGV[5]
-- is not 0, the day's ARGV[5] claim hashes (all of them); then, when
-- ARGV[6] is 1, the events' v6 claim keys; then their claim hashes
-- (event e's: KEYS[C + e] and KEYS[H + e]).
-- ARGV[1] expiry of every key (unix seconds), ARGV[2] M models, ARGV[3] U
-- users, ARGV[4] S sessions, ARGV[5] F: 0 or the number of the day's claim
-- hashes in KEYS, ARGV[6] 1 when the v6 claim keys are in KEYS, else 0;
-- then per event its claim field (never ''); then the
-- call's sums: the day's t p c cr cw r $ n pc pt pu; M records of a
-- model's name and its t p c n $ pc pt pu; U such records of a userId; the
-- S distinct sessionIds. Optionally a last value: the call's claim token
-- (a decimal integer of 5 to 19 digits).
-- Returns 1 when every id was new and the sums were written; 2 the same,
-- when the call did not carry the day's claim hashes and the day needs
-- them: its claim-expiry marker does not hold the expiry, or the day is
-- dense and its dense marker does not hold the expiry (the caller's next
-- call carries them); 3 when the call left out the v6 claim keys and the
-- day may hold some: then nothing was written and the caller sends the
-- call again with them; 0
-- when an id was claimed before (or twice in the call): then nothing was
-- written and the caller sends the events with the per-event script (v7).
-- The marker, when it holds ARGV[1], says that every key of the day that
-- exists expires at ARGV[1]: a call then sets the expiry only of the keys
-- it creates. A call that carries the day's claim hashes sets the expiry
-- of each that exists and of the day keys, then the marker.
-- A day is dense from DENSE events on (128 a claim hash): a call that
-- carries its claim hashes then makes each a hash table (a field whose
-- value is longer than a listpack takes), so that a claim costs the same
-- however full the day is, and sets the dense marker to the expiry.
-- The totals' field nov6, set by the call that counts a day's first event
-- (v11, both scripts), says no v6 claim key can exist in the day: no
-- event had been counted in it, and no v6 instance runs beside v7 or
-- later (docs/redis.md, "Upgrading to v7"). Its calls may leave the v6
-- claim keys out.
local DENSE = 524288
local DENSE_FIELD = ' dense' -- starts with a space and is not 21 bytes: never a claim field
local DENSE_VALUE = 'this day holds many events: its claim hashes are kept as hash tables'
local F = tonumber(ARGV[5] or '')
local function refuse(msg)
  return redis.error_reply('ERR tokenledger add: ' .. msg)
end
if F ~= 0 and F ~= 4096 then
  return refuse('expected 0 or 4096 claim hashes of the day')
end
local withV6 = ARGV[6] == '1'
if not withV6 and ARGV[6] ~= '0' then
  return refuse('expected 1 or 0 for whether the v6 claim keys are in KEYS')
end
local n = (#KEYS - 7 - F) / (withV6 and 2 or 1)
local function count(v)
  if v and (v == '0' or (#v <= 4 and string.match(v, '^[1-9]%d*$'))) then return tonumber(v) end
end
local M, U, S = count(ARGV[2]), count(ARGV[3]), count(ARGV[4])
if n < 1 or n % 1 ~= 0 or not (M and U and S) then
  return refuse('expected 7 day keys, the day\'s claim hashes or none, 1 or 2 claim keys per event, the expiry and the counts of models, users, sessions and claim hashes')
end
local base = 6 + n + 11 + 9 * M + 9 * U + S
if #ARGV ~= base and #ARGV ~= base + 1 then
  return refuse('expected 6 + 1 per event + 11 + 9 per model and user + 1 per session values, and optionally a claim token')
end
local exp, token = ARGV[1], nil
if not string.match(exp, '^[1-9]%d%d%d%d%d%d%d%d%d%d?$') then
  return refuse('the expiry is not a time in unix seconds')
end
if #ARGV == base + 1 then
  token = ARGV[#ARGV]
  if not string.match(token, '^[1-9]%d%d%d%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$') then
    return refuse('the claim token is not a decimal integer of 5 to 19 digits')
  end
end
local C = 7 + F -- event e's v6 claim key is KEYS[C + e], when withV6
local H = withV6 and C + n or C -- its claim hash KEYS[H + e]
local T = 7 + n -- the day's sums are ARGV[T .. T + 10]
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
local bad = check(1, 'hash') or check(2, 'hash') or check(6, 'string')
if not bad and U > 0 then bad = check(3, 'hash') or check(4, 'set') end
if not bad and S > 0 then bad = check(5, 'set') end
if bad then return bad end
local marked = exists[6] and redis.call('GET', KEYS[6]) == exp
local wasMarked = marked

-- Every counter the call writes holds an integer HINCRBY takes, which the
-- call's sum cannot take to 2^62 (as v7). cur[i] keeps what each hash's
-- fields hold, for the writes below.
-- Lists are passed to a command at most 1,024 values at a time: Lua's
-- unpack takes no more than about 8,000.
local chunk = 1024
local function counters(i, fields, add, cur)
  local got = {}
  for from = 1, #fields, chunk do
    local part = redis.pcall('HMGET', KEYS[i], unpack(fields, from, math.min(from + chunk - 1, #fields)))
    if part['err'] then
      local t = redis.call('TYPE', KEYS[i])['ok']
      if t ~= 'hash' then return wrongType(i, t, 'hash') end
      return part
    end
    for k = 1, #part do got[from + k - 1] = part[k] end
  end
  for f = 1, #fields do
    local v = got[f]
    if v and v ~= '0' and not (#v <= 20 and string.match(v, '^[1-9]%d*$')) then
      return refuse('field ' .. fields[f] .. ' of ' .. KEYS[i] .. ' does not hold an integer from 0 to 2^62')
    end
    if (tonumber(v) or 0) + add[f] >= 2^62 then
      return refuse('counter ' .. fields[f] .. ' of ' .. KEYS[i] .. ' would overflow')
    end
    cur[f] = v
  end
end
local dayCodes = {'t', 'p', 'c', 'cr', 'cw', 'r', '$', 'n', 'pc', 'pt', 'pu', 'nov6'}
day[12] = 0
local dayCur = {}
bad = counters(1, dayCodes, day, dayCur)
if bad then return bad end
-- The day's first event (no n yet) makes it a day without v6 claim keys.
local firstEvents = not dayCur[8]
local noV6 = firstEvents or dayCur[12]
if not withV6 and not noV6 then return 3 end
-- A dense day whose dense marker does not hold the expiry has claim
-- hashes to convert.
local convert = false
if (tonumber(dayCur[8]) or 0) + n >= DENSE then
  bad = check(7, 'string')
  if bad then return bad end
  convert = not (exists[7] and redis.call('GET', KEYS[7]) == exp)
end
-- The models' and the users' fields, each hash's in one list: record r's
-- field j is list[8r' + j], r' its place in its hash.
local codes = {'t', 'p', 'c', 'n', '$', 'pc', 'pt', 'pu'}
local recFields, recAdd, recCur = {{}, {}}, {{}, {}}, {{}, {}}
for r = 0, M + U - 1 do
  local b = R + 9 * r
  local add = sums(b + 1, 8)
  if not add then return refuse('a sum of ' .. ARGV[b] .. ' is not a decimal integer from 0 to 2^62') end
  local h = r < M and 1 or 2
  for j = 1, 8 do
    local fl = recFields[h]
    fl[#fl + 1] = codes[j] .. '|' .. ARGV[b]
    recAdd[h][#fl] = add[j]
  end
end
for h = 1, 2 do
  if exists[h + 1] and #recFields[h] > 0 then
    bad = counters(h + 1, recFields[h], recAdd[h], recCur[h])
    if bad then return bad end
  end
end

-- The claims: an id claimed before (by its v6 key or its field) means
-- the call writes nothing and answers 0. HSETNX claims each id; at the
-- first that fails, the claims made so far are taken back (the script
-- runs alone, so no one sees them).
if not noV6 and redis.call('EXISTS', unpack(KEYS, C + 1, C + n)) > 0 then return 0 end -- a call without them returned 3 above
-- When the marker holds the expiry and every claim hash of the call
-- exists, each already expires at it. (EXISTS counts a key named twice
-- twice, so n means every one exists.)
local setExpiry = not marked or redis.call('EXISTS', unpack(KEYS, H + 1, H + n)) < n
local value = token or '1'
for e = 1, n do
  local r = redis.pcall('HSETNX', KEYS[H + e], ARGV[6 + e], value)
  if r ~= 1 then
    for u = 1, e - 1 do redis.call('HDEL', KEYS[H + u], ARGV[6 + u]) end
    return 0
  end
end
if F > 0 and (convert or not marked) then
  if convert then
    -- After the claims nothing may fail: a key of another type under a
    -- claim hash's name (no claim of this call is in it) stays as it is.
    for b = 8, 7 + F do redis.pcall('HSET', KEYS[b], DENSE_FIELD, DENSE_VALUE) end
    redis.call('SET', KEYS[7], exp, 'EXAT', exp)
    convert = false
  end
  for b = 1, 7 + F do
    if b ~= 6 and b ~= 7 then redis.call('EXPIREAT', KEYS[b], exp) end
  end
  redis.call('SET', KEYS[6], exp, 'EXAT', exp)
  marked = true
elseif setExpiry then
  local seen = {}
  for e = 1, n do
    local k = KEYS[H + e]
    if not seen[k] then
      seen[k] = true
      redis.call('EXPIREAT', k, exp)
    end
  end
end

-- The counters: each hash's fields written with one HSET of their new
-- values (t, p, c and n always, the others when not 0, as v7 writes
-- them). A value of 2^53 or more, which a Lua number cannot hold exactly,
-- is added with HINCRBY of the sum as sent instead. Field f's sum was
-- sent as ARGV[at(f)].
local function write(i, fields, add, at, cur, required)
  local set = {}
  for f = 1, #fields do
    if required(f) or add[f] ~= 0 then
      local sum = (tonumber(cur[f]) or 0) + add[f]
      if sum < 2^53 then
        set[#set + 1] = fields[f]
        set[#set + 1] = string.format('%.0f', sum)
      else
        redis.call('HINCRBY', KEYS[i], fields[f], ARGV[at(f)])
      end
    end
  end
  for from = 1, #set, chunk do
    redis.call('HSET', KEYS[i], unpack(set, from, math.min(from + chunk - 1, #set)))
  end
end
write(1, dayCodes, day, function(f) return T + f - 1 end, dayCur, function(f) return f <= 3 or f == 8 end)
if firstEvents then redis.call('HSET', KEYS[1], 'nov6', '1') end
for h = 1, 2 do
  local first = h == 1 and 0 or M
  write(h + 1, recFields[h], recAdd[h], function(f)
    return R + 9 * (first + math.floor((f - 1) / 8)) + (f - 1) % 8 + 1
  end, recCur[h], function(f) return (f - 1) % 8 < 4 end)
end
-- A day key that existed in a marked day already expires at exp.
local function expire(i)
  if not (wasMarked and exists[i]) then redis.call('EXPIREAT', KEYS[i], exp) end
end
expire(1)
expire(2)
if U > 0 then
  local list = {}
  for r = M, M + U - 1 do list[#list + 1] = ARGV[R + 9 * r] end
  redis.call('SADD', KEYS[4], unpack(list))
  expire(4)
  expire(3)
end
if S > 0 then
  redis.call('SADD', KEYS[5], unpack(ARGV, Z, Z + S - 1))
  expire(5)
end
if convert or not marked then return 2 end
return 1
