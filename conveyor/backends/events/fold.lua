-- Fold one batch of a task's events into its Redis hash, timeline and indexes.
-- KEYS[1] the task's hash, KEYS[2] its timeline. ARGV: state, state_key, updated_at, ttl ms,
-- task id, key prefix, the batch's events of the task (JSON lines), then field/value pairs.
-- Appends to the timeline (while under TIMELINE_BYTES) and keeps the task's entry in the
-- indexes current: all tasks, its state's, its name's and its worker's sorted sets, each
-- scored by the row's last update. TIMELINE_BYTES is put in by conveyor when it loads this.
local key, id, prefix = KEYS[1], ARGV[5], ARGV[6]
if redis.call('STRLEN', KEYS[2]) < TIMELINE_BYTES then
  redis.call('APPEND', KEYS[2], ARGV[7])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local old_state = redis.call('HGET', key, 'state')
if tonumber(ARGV[2]) >= tonumber(redis.call('HGET', key, 'state_key') or '0') then
  redis.call('HSET', key, 'state', ARGV[1], 'state_key', ARGV[2])
end
if tonumber(ARGV[3]) > tonumber(redis.call('HGET', key, 'updated_at') or '0') then
  redis.call('HSET', key, 'updated_at', ARGV[3])
end
for i = 8, #ARGV, 2 do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', key, ARGV[4])
local row = redis.call('HMGET', key, 'state', 'updated_at', 'name', 'hostname')
redis.call('ZADD', prefix .. 'tasks', row[2], id)
if old_state and old_state ~= row[1] then
  redis.call('ZREM', prefix .. 'state:' .. old_state, id)
end
redis.call('ZADD', prefix .. 'state:' .. row[1], row[2], id)
if row[3] then redis.call('ZADD', prefix .. 'name:' .. row[3], row[2], id) end
if row[4] then redis.call('ZADD', prefix .. 'host:' .. row[4], row[2], id) end
return 1
