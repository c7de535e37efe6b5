-- ARGV: held key prefix. Promotes due messages; returns {ready, delayed, held, dead, the
-- oldest ready element or false} (for monitoring: the consumers' held lists are summed).
promote(k, now_ms())
local held = 0
for _, cid in ipairs(redis.call('ZRANGE', k.consumers, 0, -1)) do
  held = held + redis.call('LLEN', ARGV[1] .. cid)
end
return {redis.call('LLEN', k.ready), redis.call('ZCARD', k.delayed), held,
        redis.call('LLEN', k.dead), redis.call('LINDEX', k.ready, -1)}
