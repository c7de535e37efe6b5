-- ARGV: held key prefix. Removes every key of the queue, the consumers' held lists too.
for _, cid in ipairs(redis.call('ZRANGE', k.consumers, 0, -1)) do
  redis.call('DEL', ARGV[1] .. cid)
end
redis.call('DEL', k.ready, k.delayed, k.seq, k.dead, k.consumers)
