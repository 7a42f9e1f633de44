-- tokenledger add v11 (per event; v7's layout): count one UTC day's new
-- events. The call that counts a day's first event sets the totals' field
-- nov6: the day holds no v6 claim key, so no later call looks for one
-- (docs/redis.md, "Script versions", v11).
-- KEYS[1] totals hash, KEYS[2] models hash, KEYS[3] users hash,
-- KEYS[4] user set, KEYS[5] session set, then two keys per event: its v6
-- claim key (<prefix>:{<day>}:id:<id>) and its claim hash (<prefix>:{<day>}:ids:<bucket>).
-- ARGV[1] expiry of every key (unix seconds: start of day D+R+1), then per
-- event: model, userId, sessionId, promptTokens, completionTokens,
-- totalTokens, cacheReadTokens, cacheWriteTokens, reasoningTokens, cost
-- (nano-dollars), price source ('', pc, pt or pu), claim field (the id as
-- the claim hash holds it; '' to claim with the v6 key). An empty userId or sessionId means none. Optionally a
-- last value: the call's claim token (a decimal integer of 5 to 19 digits),
-- the same in every attempt of one call.
-- Returns one integer per event: 1 counted now (or, with a token, by an
-- earlier attempt of this call), 0 counted before (an id twice in one call
-- counts at its first place only).
local n = (#KEYS - 5) / 2
if n < 1 or n % 1 ~= 0 or (#ARGV ~= 1 + 12 * n and #ARGV ~= 2 + 12 * n) then
  return redis.error_reply('ERR tokenledger add: expected 5 day keys, 2 claim keys per event and 1 + 12 values per event, and optionally a claim token')
end
local exp = ARGV[1]
local token = nil
if #ARGV == 2 + 12 * n then
  token = ARGV[#ARGV]
  if not string.match(token, '^[1-9]%d%d%d%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$') then
    return redis.error_reply('ERR tokenledger add: the claim token is not a decimal integer of 5 to 19 digits')
  end
end
-- Event e (1-based) has its values at ARGV[b + 1 .. b + 12], b = 1 + 12(e - 1),
-- and its keys at KEYS[4 + 2e] (v6 claim key) and KEYS[5 + 2e] (claim hash).

-- Preconditions, checked before the first write.
-- Every number a plain decimal integer below 10^16; num[i] is ARGV[i]'s value.
local num = {}
local add = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} -- t p c cr cw r $ n pc pt pu, over all events
local srcAt = {pc = 9, pt = 10, pu = 11} -- a price source's place in add
local anyUser, anySession = false, false
for b = 1, 12 * n, 12 do
  for j = b + 4, b + 10 do
    local v = ARGV[j]
    if #v > 16 or (v ~= '0' and not string.match(v, '^[1-9]%d*$')) then
      return redis.error_reply('ERR tokenledger add: event ' .. ((b - 1) / 12 + 1) .. ' value ' .. (j - b) .. ' is not a decimal integer from 0 to 10^16')
    end
    num[j] = tonumber(v)
  end
  local src = ARGV[b + 11]
  if src ~= '' then
    if not srcAt[src] then
      return redis.error_reply('ERR tokenledger add: event ' .. ((b - 1) / 12 + 1) .. ' price source is not one of pc, pt, pu or empty')
    end
    add[srcAt[src]] = add[srcAt[src]] + 1
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
local exists = {}
local function check(i, want)
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want then return wrongType(i, t, want) end
  exists[i] = t ~= 'none'
end
local bad = check(2, 'hash')
if not bad and anyUser then bad = check(3, 'hash') or check(4, 'set') end
if not bad and anySession then bad = check(5, 'set') end
if bad then return bad end
-- The claims already in the call's claim hashes: one HEXISTS per id
-- (an integer reply, so no Lua table per id as HMGET's list would make),
-- which also refuses a claim key that is not a hash (an HSET failing
-- after other claims would leave them without counters); with a token,
-- an HGET of each id found. held[e] is true, or event e's claim value
-- with a token, or nil. The events of one hash are chained (first[hash],
-- nxt[e]) for the writes below.
local held, first, last, nxt, order, olds = {}, {}, {}, {}, {}, {}
for e = 1, n do
  local f = ARGV[12 * e + 1]
  if f ~= '' then
    local k = KEYS[5 + 2 * e]
    if first[k] then nxt[last[k]] = e else
      first[k] = e
      order[#order + 1] = k
    end
    last[k] = e
    olds[#olds + 1] = KEYS[4 + 2 * e]
    local r = redis.pcall('HEXISTS', k, f)
    if type(r) == 'table' then
      local t = redis.call('TYPE', k)['ok']
      if t ~= 'hash' then return wrongType(5 + 2 * e, t, 'hash') end
      return r
    end
    if r == 1 then held[e] = not token or redis.call('HGET', k, f) end
  end
end
-- Every counter the call may write holds an integer that HINCRBY takes
-- (a decimal without sign or leading zeros: tokenledger writes no
-- negative counter) and that the call cannot take to 2^62:
-- a HINCRBY failing after the claims would leave ids claimed without
-- their counters. 2^62 leaves a margin far above the rounding of Lua's
-- doubles, so no call can take a counter past 2^63 - 1. Each hash's
-- fields are read with one HMGET; the sums bound what the call adds.
-- Returns an error reply, or nil and the fields as read.
local function counters(i, fields, sums)
  local cur = redis.pcall('HMGET', KEYS[i], unpack(fields))
  if cur['err'] then
    local t = redis.call('TYPE', KEYS[i])['ok']
    if t ~= 'hash' then return wrongType(i, t, 'hash') end
    return cur
  end
  for f = 1, #fields do
    local v = cur[f]
    if v and v ~= '0' and not (#v <= 20 and string.match(v, '^[1-9]%d*$')) then
      return redis.error_reply('ERR tokenledger add: field ' .. fields[f] .. ' of ' .. KEYS[i] .. ' does not hold an integer from 0 to 2^62')
    end
    if (tonumber(v) or 0) + sums[f] >= 2^62 then
      return redis.error_reply('ERR tokenledger add: counter ' .. fields[f] .. ' of ' .. KEYS[i] .. ' would overflow')
    end
  end
  return nil, cur
end
add[8] = n
add[12] = 0
local tot
bad, tot = counters(1, {'t', 'p', 'c', 'cr', 'cw', 'r', '$', 'n', 'pc', 'pt', 'pu', 'nov6'}, add)
if bad then return bad end
-- No event counted in the day yet (no n), or nov6: no v6 claim key can
-- be in it.
local firstEvents = not tot[8]
local anyOld = not firstEvents and not tot[12] and #olds > 0 and redis.call('EXISTS', unpack(olds)) > 0
-- The models hash (always written) and the users hash (when an event has
-- a userId), per name the call carries: t, p, c, n, $, pc, pt and pu.
for h = 1, 2 do
  if exists[h + 1] then
    local sums, order = {}, {}
    for b = 1, 12 * n, 12 do
      local name = ARGV[b + h]
      if h == 1 or name ~= '' then
        local r = sums[name]
        if not r then
          r = {0, 0, 0, 0, 0, 0, 0, 0}
          sums[name] = r
          order[#order + 1] = name
        end
        r[1] = r[1] + num[b + 6]
        r[2] = r[2] + num[b + 4]
        r[3] = r[3] + num[b + 5]
        r[4] = r[4] + 1
        r[5] = r[5] + num[b + 10]
        local src = ARGV[b + 11]
        if src ~= '' then r[srcAt[src] - 3] = r[srcAt[src] - 3] + 1 end
      end
    end
    for _, name in ipairs(order) do
      bad = counters(h + 1, {'t|' .. name, 'p|' .. name, 'c|' .. name, 'n|' .. name, '$|' .. name,
        'pc|' .. name, 'pt|' .. name, 'pu|' .. name}, sums[name])
      if bad then return bad end
    end
  end
end

-- Writes. First the claims: new lists the b of each new event. An id is
-- claimed already when its claim hash holds its field, or its v6 key
-- exists (written before the upgrade to v7: honoured for the day's whole
-- retention). With a token, a claim already holding it was made by an
-- earlier attempt of this call (its reply lost), which counted the
-- event: answered 1, not counted again. seen (by v6 key, one per id)
-- keeps an id's second place in the call at 0 either way. An id without
-- a field (too long for a listpack) is claimed with its v6 key, as v6 did.
local out, new, seen, fresh = {}, {}, {}, {}
local value = token or '1'
for e = 1, n do
  local k, f = KEYS[4 + 2 * e], ARGV[12 * e + 1]
  if f == '' then
    if redis.call('SET', k, value, 'NX', 'EXAT', exp) then
      fresh[e] = true
    elseif token and not seen[k] and redis.pcall('GET', k) == token then
      out[e] = 1
    end
  elseif seen[k] then
  elseif held[e] then
    if token and held[e] == token then out[e] = 1 end
  elseif not (anyOld and redis.call('EXISTS', k) == 1) then
    fresh[e] = true
  end
  if fresh[e] then
    new[#new + 1] = 1 + 12 * (e - 1)
    out[e] = 1
  elseif not out[e] then
    out[e] = 0
  end
  seen[k] = true
end
-- Each claim hash gets its new fields with one HSET, and EXPIREAT like
-- every key the script writes.
for _, k in ipairs(order) do
  local e, one, more = first[k], nil, nil
  while e do
    if fresh[e] and ARGV[12 * e + 1] ~= '' then
      if not one then one = e
      else
        if not more then more = {ARGV[12 * one + 1], value} end
        more[#more + 1] = ARGV[12 * e + 1]
        more[#more + 1] = value
      end
    end
    e = nxt[e]
  end
  if more then
    redis.call('HSET', k, unpack(more))
  elseif one then
    redis.call('HSET', k, ARGV[12 * one + 1], value)
  end
  if one then redis.call('EXPIREAT', k, exp) end
end
if #new == 0 then return out end
if firstEvents then redis.call('HSET', KEYS[1], 'nov6', '1') end

local function hincrby(i, field, v)
  redis.call('HINCRBY', KEYS[i], field, v)
end
-- sent writes the increments of event b as sent, one HINCRBY per field.
local function sent(b)
  local p, c, t, cost, src = ARGV[b + 4], ARGV[b + 5], ARGV[b + 6], ARGV[b + 10], ARGV[b + 11]
  hincrby(1, 't', t)
  hincrby(1, 'p', p)
  hincrby(1, 'c', c)
  hincrby(1, 'n', '1')
  if ARGV[b + 7] ~= '0' then hincrby(1, 'cr', ARGV[b + 7]) end
  if ARGV[b + 8] ~= '0' then hincrby(1, 'cw', ARGV[b + 8]) end
  if ARGV[b + 9] ~= '0' then hincrby(1, 'r', ARGV[b + 9]) end
  if cost ~= '0' then hincrby(1, '$', cost) end
  if src ~= '' then hincrby(1, src, '1') end
  for h = 2, 3 do
    local name = ARGV[b + h - 1] -- the model (any, even empty), then the userId
    if h == 2 or name ~= '' then
      hincrby(h, 't|' .. name, t)
      hincrby(h, 'p|' .. name, p)
      hincrby(h, 'c|' .. name, c)
      hincrby(h, 'n|' .. name, '1')
      if cost ~= '0' then hincrby(h, '$|' .. name, cost) end
      if src ~= '' then hincrby(h, src .. '|' .. name, '1') end
    end
  end
end
-- Several new events are summed: for the day (T), per model and per
-- userId (recs, by name; names in first-seen order), and each field is
-- written once. A record counts its events (k) and keeps its first (b):
-- a record of one event writes that event's values as sent. A sum is
-- exact while it stays below 2^53: the numbers are integers, none
-- negative, so a sum that ends below 2^53 never rounded on the way; and
-- no model's or user's sum exceeds the day's. Past that (only for numbers
-- far above any real event's), every event is written as sent.
local summed = false
if #new > 1 then
  local T = {k = 0, b = new[1], t = 0, p = 0, c = 0, x = 0, cr = 0, cw = 0, r = 0, pc = 0, pt = 0, pu = 0}
  local recs, names = {{}, {}}, {{}, {}}
  local function into(r, b)
    r.k = r.k + 1
    r.t = r.t + num[b + 6]
    r.p = r.p + num[b + 4]
    r.c = r.c + num[b + 5]
    r.x = r.x + num[b + 10]
    local src = ARGV[b + 11]
    if src ~= '' then r[src] = r[src] + 1 end
  end
  for i = 1, #new do
    local b = new[i]
    into(T, b)
    T.cr = T.cr + num[b + 7]
    T.cw = T.cw + num[b + 8]
    T.r = T.r + num[b + 9]
    for h = 1, 2 do
      local name = ARGV[b + h]
      if h == 1 or name ~= '' then
        local r = recs[h][name]
        if not r then
          r = {k = 0, b = b, t = 0, p = 0, c = 0, x = 0, pc = 0, pt = 0, pu = 0}
          recs[h][name] = r
          names[h][#names[h] + 1] = name
        end
        into(r, b)
      end
    end
  end
  local big = 9007199254740992
  if T.t < big and T.p < big and T.c < big and T.x < big and T.cr < big and T.cw < big and T.r < big then
    summed = true
    local function val(r, j, sum) -- as sent for one event, else the sum
      if r.k == 1 then return ARGV[r.b + j] end
      return string.format('%.0f', sum)
    end
    hincrby(1, 't', val(T, 6, T.t))
    hincrby(1, 'p', val(T, 4, T.p))
    hincrby(1, 'c', val(T, 5, T.c))
    hincrby(1, 'n', tostring(T.k))
    if T.cr > 0 then hincrby(1, 'cr', val(T, 7, T.cr)) end
    if T.cw > 0 then hincrby(1, 'cw', val(T, 8, T.cw)) end
    if T.r > 0 then hincrby(1, 'r', val(T, 9, T.r)) end
    if T.x > 0 then hincrby(1, '$', val(T, 10, T.x)) end
    for _, f in ipairs({'pc', 'pt', 'pu'}) do
      if T[f] > 0 then hincrby(1, f, tostring(T[f])) end
    end
    for h = 1, 2 do
      for _, name in ipairs(names[h]) do
        local r = recs[h][name]
        hincrby(h + 1, 't|' .. name, val(r, 6, r.t))
        hincrby(h + 1, 'p|' .. name, val(r, 4, r.p))
        hincrby(h + 1, 'c|' .. name, val(r, 5, r.c))
        hincrby(h + 1, 'n|' .. name, tostring(r.k))
        if r.x > 0 then hincrby(h + 1, '$|' .. name, val(r, 10, r.x)) end
        for _, f in ipairs({'pc', 'pt', 'pu'}) do
          if r[f] > 0 then hincrby(h + 1, f .. '|' .. name, tostring(r[f])) end
        end
      end
    end
  end
end
if not summed then
  for i = 1, #new do sent(new[i]) end
end
redis.call('EXPIREAT', KEYS[1], exp)
redis.call('EXPIREAT', KEYS[2], exp)
-- members adds the new events' non-empty ARGV[b + j] to the set KEYS[k],
-- each once, and reports whether there was any.
local function members(k, j)
  if #new == 1 then
    local m = ARGV[new[1] + j]
    if m == '' then return false end
    redis.call('SADD', KEYS[k], m)
  else
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
  end
  redis.call('EXPIREAT', KEYS[k], exp)
  return true
end
if members(4, 2) then redis.call('EXPIREAT', KEYS[3], exp) end
members(5, 3)
return out
