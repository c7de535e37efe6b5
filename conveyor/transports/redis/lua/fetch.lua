-- ARGV: consumer id, k, lease ms, max deliveries, held key prefix.
-- Registers the consumer, returns the holdings of consumers whose lease lapsed, promotes
-- due delayed messages, then moves up to k ready elements into this consumer's held list.
-- Returns {0, oldest, ..., newest}, or {ms until the next delayed message is due | -1}.
local cid, want, lease, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
redis.call('ZADD', k.consumers, now + lease, cid)
local lapsed = redis.call('ZRANGEBYSCORE', k.consumers, '-inf', '(' .. now, 'LIMIT', 0, 16)
for _, other in ipairs(lapsed) do
  release_all(k, ARGV[5] .. other, max, now)
  redis.call('ZREM', k.consumers, other)
end
promote(k, now)
local items = redis.call('LRANGE', k.ready, -want, -1)
local n = #items
if n == 0 then
  local nxt = redis.call('ZRANGE', k.delayed, 0, 0, 'WITHSCORES')
  if #nxt == 0 then return {-1} end
  return {math.max(0, tonumber(nxt[2]) - now)}
end
redis.call('LTRIM', k.ready, 0, -n - 1)
local taken = {}
for i = n, 1, -1 do taken[#taken + 1] = items[i] end
for i = 1, n, 1000 do
  redis.call('LPUSH', k.held, unpack(taken, i, math.min(i + 999, n)))
end
table.insert(taken, 1, 0)
return taken
