-- For each record i: KEYS[i] its key; ARGV[3i-2] marker+record, ARGV[3i-1] expiry in ms
-- (0: never), ARGV[3i] its channel. Returns 1 per record stored, 0 per ready one kept.
local stored = {}
for i, key in ipairs(KEYS) do
  local value, ttl = ARGV[3 * i - 2], tonumber(ARGV[3 * i - 1])
  if redis.call('GETRANGE', key, 0, 0) == 'R' then
    stored[i] = 0
  else
    if ttl > 0 then
      redis.call('SET', key, value, 'PX', ttl)
    else
      redis.call('SET', key, value)
    end
    redis.call('PUBLISH', ARGV[3 * i], value)
    stored[i] = 1
  end
end
return stored
