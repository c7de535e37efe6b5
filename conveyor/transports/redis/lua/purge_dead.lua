-- No ARGV. Removes the dead letters, returns how many.
local n = redis.call('LLEN', k.dead)
redis.call('DEL', k.dead)
return n
