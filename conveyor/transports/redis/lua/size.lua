-- No ARGV. Promotes due messages, returns the ready count.
promote(k, now_ms())
return redis.call('LLEN', k.ready)
