-- KEYS: held. ARGV: element... Removes each element once; returns 1 or 0 for each.
local removed = {}
for i, e in ipairs(ARGV) do removed[i] = redis.call('LREM', KEYS[1], -1, e) end
return removed
