-- Take the beat lease when free, or renew it for its holder.
-- KEYS[1] lease key; ARGV[1] holder, ARGV[2] ttl in milliseconds. Returns 1 when held.
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
