-- ARGV: consumer id, max deliveries [, element...].
-- With elements: returns just those (the strays a lost reply left behind). Without: returns
-- everything the consumer holds and unregisters it (close). Returns how many came back.
local max, now = tonumber(ARGV[2]), now_ms()
if #ARGV == 2 then
  redis.call('ZREM', k.consumers, ARGV[1])
  return release_all(k, k.held, max, now)
end
local n = 0
for i = 3, #ARGV do
  if redis.call('LREM', k.held, -1, ARGV[i]) > 0 then
    requeue(k, ARGV[i], max, 0, now)
    n = n + 1
  end
end
return n
