-- No ARGV. Promotes due messages, removes the ready ones, returns how many.
promote(k, now_ms())
local n = redis.call('LLEN', k.ready)
redis.call('DEL', k.ready)
return n
