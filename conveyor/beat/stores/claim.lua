-- Advance an entry's last fire time if the new one is later (the tick's idempotency key).
-- KEYS[1] hash of last runs; ARGV[1] entry, ARGV[2] fire time (seconds, as text).
-- Returns 1 when advanced. The stored text is the caller's repr of a double, so comparing
-- with tonumber is exact.
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored and tonumber(stored) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
