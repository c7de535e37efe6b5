-- ARGV: [dead entry...]. Moves the given dead entries (all when none are given) back to
-- the ready list with a fresh count of 1; returns how many moved.
local function revive(d)
  local a = string.find(d, ':', 1, true)
  local b = string.find(d, ':', a + 1, true)
  local _, env = split(string.sub(d, b + 1 + tonumber(string.sub(d, a + 1, b - 1))))
  redis.call('LPUSH', k.ready, env)
end
if #ARGV == 0 then
  local all = redis.call('LRANGE', k.dead, 0, -1)
  redis.call('DEL', k.dead)
  for _, d in ipairs(all) do revive(d) end
  return #all
end
local n = 0
for _, d in ipairs(ARGV) do
  if redis.call('LREM', k.dead, 1, d) > 0 then
    revive(d)
    n = n + 1
  end
end
return n
