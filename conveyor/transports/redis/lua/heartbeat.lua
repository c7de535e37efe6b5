-- ARGV: consumer id, lease ms. Keeps this consumer's lease alive. It registers again only
-- while it holds something (a lapsed lease meanwhile), so a deleted queue stays deleted.
local cid = ARGV[1]
if redis.call('ZSCORE', k.consumers, cid) or redis.call('EXISTS', k.held) == 1 then
  redis.call('ZADD', k.consumers, now_ms() + tonumber(ARGV[2]), cid)
end
