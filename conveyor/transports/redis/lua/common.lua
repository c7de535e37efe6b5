-- Shared by every script but ack.lua (scripts.py puts it first). MAX_REASON and MAGIC
-- are defined before it, from conveyor's own constants.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function split(e)
  if string.sub(e, 1, #MAGIC) ~= MAGIC then
    local i = string.find(e, ':', 1, true)
    local n = i and tonumber(string.sub(e, 1, i - 1))
    if n then return n, string.sub(e, i + 1) end
  end
  return 1, e
end

local function bury(dead, e, reason, now)
  redis.call('RPUSH', dead, string.format('%d', now) .. ':' .. #reason .. ':' .. reason .. e)
end

local function schedule(delayed, seq, e, due)
  local n = redis.call('INCR', seq)
  redis.call('ZADD', delayed, due, string.format('%016x', n) .. e)
end

-- A held element comes back with its count raised, or is buried past max deliveries.
-- Without a delay it goes to the front (right end) of the ready list.
local function requeue(k, e, max, delay, now)
  local count, env = split(e)
  if count >= max then
    bury(k.dead, e, MAX_REASON, now)
  elseif delay > 0 then
    schedule(k.delayed, k.seq, (count + 1) .. ':' .. env, now + delay)
  else
    redis.call('RPUSH', k.ready, (count + 1) .. ':' .. env)
  end
end

-- Everything a consumer holds comes back, oldest ending nearest the front.
local function release_all(k, held, max, now)
  local items = redis.call('LRANGE', held, 0, -1)
  for _, e in ipairs(items) do requeue(k, e, max, 0, now) end
  redis.call('DEL', held)
  return #items
end

local function promote(k, now)
  local due = redis.call('ZRANGEBYSCORE', k.delayed, '-inf', now, 'LIMIT', 0, 1000)
  if #due > 0 then
    for _, m in ipairs(due) do redis.call('LPUSH', k.ready, string.sub(m, 17)) end
    redis.call('ZREM', k.delayed, unpack(due))
  end
end

-- KEYS: ready, delayed, seq, dead, consumers [, held]
local k = {ready = KEYS[1], delayed = KEYS[2], seq = KEYS[3], dead = KEYS[4],
           consumers = KEYS[5], held = KEYS[6]}
