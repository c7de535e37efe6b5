-- ARGV: element, requeue (1|0), delay ms, reason, max deliveries.
-- Settles one held element (nack); returns 0 when the consumer no longer holds it.
local e = ARGV[1]
if redis.call('LREM', k.held, -1, e) == 0 then return 0 end
local now = now_ms()
if ARGV[2] == '1' then
  requeue(k, e, tonumber(ARGV[5]), tonumber(ARGV[3]), now)
else
  bury(k.dead, e, ARGV[4], now)
end
return 1
