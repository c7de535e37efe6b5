-- Fold a batch's events into the Redis hashes, timelines and indexes of its tasks.
-- KEYS: per task, its hash then its timeline. ARGV: ttl ms, key prefix, then per task: its
-- id, state, state_key, updated_at, its events of the batch (JSON lines), the number of
-- field/value pairs, the pairs. For each task: appends to the timeline (while under
-- TIMELINE_BYTES), takes the state of the highest state_key and the latest updated_at
-- (base.merge's rule), sets the fields in one HSET, and keeps the task's entry in the
-- indexes current: all tasks, its state's, its name's and its worker's sorted sets, each
-- scored by the row's last update. TIMELINE_BYTES is put in by conveyor when it loads this.
local ttl, prefix = ARGV[1], ARGV[2]
local a = 3
for k = 1, #KEYS, 2 do
  local key, timeline = KEYS[k], KEYS[k + 1]
  local id, state, state_key, updated_at = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local last = a + 5 + 2 * tonumber(ARGV[a + 5])
  if redis.call('STRLEN', timeline) < TIMELINE_BYTES then
    redis.call('APPEND', timeline, ARGV[a + 4])
  end
  redis.call('PEXPIRE', timeline, ttl)
  local old = redis.call('HMGET', key, 'state', 'state_key', 'updated_at', 'name', 'hostname')
  local set, now_state, updated, name, host = {}, old[1], old[3], old[4], old[5]
  if tonumber(state_key) >= tonumber(old[2] or '0') then
    now_state = state
    set[#set + 1], set[#set + 2], set[#set + 3], set[#set + 4] =
      'state', state, 'state_key', state_key
  end
  if tonumber(updated_at) > tonumber(old[3] or '0') then
    updated = updated_at
    set[#set + 1], set[#set + 2] = 'updated_at', updated_at
  end
  for i = a + 6, last, 2 do
    set[#set + 1], set[#set + 2] = ARGV[i], ARGV[i + 1]
    if ARGV[i] == 'name' then name = ARGV[i + 1] elseif ARGV[i] == 'hostname' then host = ARGV[i + 1] end
  end
  if #set > 0 then redis.call('HSET', key, unpack(set)) end
  redis.call('PEXPIRE', key, ttl)
  redis.call('ZADD', prefix .. 'tasks', updated, id)
  if old[1] and old[1] ~= now_state then
    redis.call('ZREM', prefix .. 'state:' .. old[1], id)
  end
  redis.call('ZADD', prefix .. 'state:' .. now_state, updated, id)
  if name then redis.call('ZADD', prefix .. 'name:' .. name, updated, id) end
  if host then redis.call('ZADD', prefix .. 'host:' .. host, updated, id) end
  a = last + 1
end
return #KEYS / 2
