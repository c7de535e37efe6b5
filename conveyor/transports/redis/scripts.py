"""The Lua scripts behind the Redis transport: every state change is one atomic script.

Key layout per queue (the ``{queue}`` hash tag keeps a queue's keys in one cluster slot):

* ``conveyor:{q}:ready``      LIST, producers LPUSH on the left, consumers take from the right.
* ``conveyor:{q}:delayed``    ZSET, score = due time (server clock, ms), member = 16 hex digits
  of ``conveyor:{q}:seq`` (unique and in publish order among equal due times) + element.
* ``conveyor:{q}:held:<id>``  LIST per consumer: what it holds, newest on the left.
* ``conveyor:{q}:consumers``  ZSET, member = consumer id, score = lease expiry (server ms).
* ``conveyor:{q}:dead``       LIST, oldest on the left: ``<ms>:<len(reason)>:<reason>`` + element.

An element is ``<delivery count>:<packed envelope>``: the count the *next* delivery will
carry, so scripts raise it without decoding the envelope. A fresh message is the bare
envelope (it starts with the envelope's magic, never a digit) and counts 1, which spares a
copy per message on publish and on fetch. Every time is the server's
``TIME``, so clients with skewed clocks agree on leases and due times.
"""

from __future__ import annotations

from typing import NamedTuple

from conveyor.core.envelope import MAGIC
from conveyor.core.transport import MAX_DELIVERIES_REASON


class Keys(NamedTuple):
    """A queue's keys; `common()` is the KEYS prefix every script takes."""

    ready: bytes
    delayed: bytes
    seq: bytes
    dead: bytes
    consumers: bytes
    held_prefix: bytes  # + consumer id

    def common(self) -> list[bytes]:
        return [self.ready, self.delayed, self.seq, self.dead, self.consumers]


def keys_for(queue: str, namespace: str = "") -> Keys:
    """The keys of a (validated) queue name, each starting ``<namespace>:`` when given."""
    parts = ("ready", "delayed", "seq", "dead", "consumers", "held:")
    start = f"{namespace}:" if namespace else ""
    ready, delayed, seq, dead, consumers, held = (
        f"{start}conveyor:{{{queue}}}:{p}".encode() for p in parts
    )
    return Keys(ready, delayed, seq, dead, consumers, held)


_COMMON = f"""
local MAX_REASON = '{MAX_DELIVERIES_REASON}'
local MAGIC = '{MAGIC.decode()}'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function split(e)
  if string.sub(e, 1, #MAGIC) ~= MAGIC then
    local i = string.find(e, ':', 1, true)
    local n = i and tonumber(string.sub(e, 1, i - 1))
    if n then return n, string.sub(e, i + 1) end
  end
  return 1, e
end

local function bury(dead, e, reason, now)
  redis.call('RPUSH', dead, string.format('%d', now) .. ':' .. #reason .. ':' .. reason .. e)
end

local function schedule(delayed, seq, e, due)
  local n = redis.call('INCR', seq)
  redis.call('ZADD', delayed, due, string.format('%016x', n) .. e)
end

-- A held element comes back with its count raised, or is buried past max deliveries.
-- Without a delay it goes to the front (right end) of the ready list.
local function requeue(k, e, max, delay, now)
  local count, env = split(e)
  if count >= max then
    bury(k.dead, e, MAX_REASON, now)
  elseif delay > 0 then
    schedule(k.delayed, k.seq, (count + 1) .. ':' .. env, now + delay)
  else
    redis.call('RPUSH', k.ready, (count + 1) .. ':' .. env)
  end
end

-- Everything a consumer holds comes back, oldest ending nearest the front.
local function release_all(k, held, max, now)
  local items = redis.call('LRANGE', held, 0, -1)
  for _, e in ipairs(items) do requeue(k, e, max, 0, now) end
  redis.call('DEL', held)
  return #items
end

local function promote(k, now)
  local due = redis.call('ZRANGEBYSCORE', k.delayed, '-inf', now, 'LIMIT', 0, 1000)
  if #due > 0 then
    for _, m in ipairs(due) do redis.call('LPUSH', k.ready, string.sub(m, 17)) end
    redis.call('ZREM', k.delayed, unpack(due))
  end
end

-- KEYS: ready, delayed, seq, dead, consumers [, held]
local k = {{ready = KEYS[1], delayed = KEYS[2], seq = KEYS[3], dead = KEYS[4],
           consumers = KEYS[5], held = KEYS[6]}}
"""

# ARGV: consumer id, k, lease ms, max deliveries, held key prefix.
# Registers the consumer, returns the holdings of consumers whose lease lapsed, promotes
# due delayed messages, then moves up to k ready elements into this consumer's held list.
# Returns {0, oldest, ..., newest}, or {ms until the next delayed message is due | -1}.
FETCH = (
    _COMMON
    + """
local cid, want, lease, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
redis.call('ZADD', k.consumers, now + lease, cid)
local lapsed = redis.call('ZRANGEBYSCORE', k.consumers, '-inf', '(' .. now, 'LIMIT', 0, 16)
for _, other in ipairs(lapsed) do
  release_all(k, ARGV[5] .. other, max, now)
  redis.call('ZREM', k.consumers, other)
end
promote(k, now)
local items = redis.call('LRANGE', k.ready, -want, -1)
local n = #items
if n == 0 then
  local nxt = redis.call('ZRANGE', k.delayed, 0, 0, 'WITHSCORES')
  if #nxt == 0 then return {-1} end
  return {math.max(0, tonumber(nxt[2]) - now)}
end
redis.call('LTRIM', k.ready, 0, -n - 1)
local taken = {}
for i = n, 1, -1 do taken[#taken + 1] = items[i] end
for i = 1, n, 1000 do
  redis.call('LPUSH', k.held, unpack(taken, i, math.min(i + 999, n)))
end
table.insert(taken, 1, 0)
return taken
"""
)

# ARGV: consumer id, lease ms. Keeps this consumer's lease alive. It registers again only
# while it holds something (a lapsed lease meanwhile), so a deleted queue stays deleted.
HEARTBEAT = (
    _COMMON
    + """
local cid = ARGV[1]
if redis.call('ZSCORE', k.consumers, cid) or redis.call('EXISTS', k.held) == 1 then
  redis.call('ZADD', k.consumers, now_ms() + tonumber(ARGV[2]), cid)
end
"""
)

# ARGV: delay ms, element... Schedules elements, in order, due after the delay.
PUBLISH_DELAYED = (
    _COMMON
    + """
local due = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do schedule(k.delayed, k.seq, ARGV[i], due) end
"""
)

# KEYS: held. ARGV: element... Removes each element once; returns 1 or 0 for each.
ACK = """
local removed = {}
for i, e in ipairs(ARGV) do removed[i] = redis.call('LREM', KEYS[1], -1, e) end
return removed
"""

# ARGV: element, requeue (1|0), delay ms, reason, max deliveries.
# Settles one held element (nack); returns 0 when the consumer no longer holds it.
SETTLE = (
    _COMMON
    + """
local e = ARGV[1]
if redis.call('LREM', k.held, -1, e) == 0 then return 0 end
local now = now_ms()
if ARGV[2] == '1' then
  requeue(k, e, tonumber(ARGV[5]), tonumber(ARGV[3]), now)
else
  bury(k.dead, e, ARGV[4], now)
end
return 1
"""
)

# ARGV: consumer id, max deliveries [, element...].
# With elements: returns just those (the strays a lost reply left behind). Without: returns
# everything the consumer holds and unregisters it (close). Returns how many came back.
RELEASE = (
    _COMMON
    + """
local max, now = tonumber(ARGV[2]), now_ms()
if #ARGV == 2 then
  redis.call('ZREM', k.consumers, ARGV[1])
  return release_all(k, k.held, max, now)
end
local n = 0
for i = 3, #ARGV do
  if redis.call('LREM', k.held, -1, ARGV[i]) > 0 then
    requeue(k, ARGV[i], max, 0, now)
    n = n + 1
  end
end
return n
"""
)

# No ARGV. Promotes due messages, returns the ready count.
SIZE = (
    _COMMON
    + """
promote(k, now_ms())
return redis.call('LLEN', k.ready)
"""
)

# ARGV: held key prefix. Promotes due messages; returns {ready, delayed, held, dead, the
# oldest ready element or false} (for monitoring: the consumers' held lists are summed).
COUNTS = (
    _COMMON
    + """
promote(k, now_ms())
local held = 0
for _, cid in ipairs(redis.call('ZRANGE', k.consumers, 0, -1)) do
  held = held + redis.call('LLEN', ARGV[1] .. cid)
end
return {redis.call('LLEN', k.ready), redis.call('ZCARD', k.delayed), held,
        redis.call('LLEN', k.dead), redis.call('LINDEX', k.ready, -1)}
"""
)

# No ARGV. Removes the dead letters, returns how many.
PURGE_DEAD = (
    _COMMON
    + """
local n = redis.call('LLEN', k.dead)
redis.call('DEL', k.dead)
return n
"""
)

# No ARGV. Promotes due messages, removes the ready ones, returns how many.
PURGE = (
    _COMMON
    + """
promote(k, now_ms())
local n = redis.call('LLEN', k.ready)
redis.call('DEL', k.ready)
return n
"""
)

# ARGV: held key prefix. Removes every key of the queue, the consumers' held lists too.
DELETE = (
    _COMMON
    + """
for _, cid in ipairs(redis.call('ZRANGE', k.consumers, 0, -1)) do
  redis.call('DEL', ARGV[1] .. cid)
end
redis.call('DEL', k.ready, k.delayed, k.seq, k.dead, k.consumers)
"""
)

# ARGV: [dead entry...]. Moves the given dead entries (all when none are given) back to
# the ready list with a fresh count of 1; returns how many moved.
REPLAY = (
    _COMMON
    + """
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
"""
)

SCRIPTS = {
    "fetch": FETCH,
    "heartbeat": HEARTBEAT,
    "publish_delayed": PUBLISH_DELAYED,
    "ack": ACK,
    "settle": SETTLE,
    "release": RELEASE,
    "size": SIZE,
    "counts": COUNTS,
    "purge": PURGE,
    "purge_dead": PURGE_DEAD,
    "delete": DELETE,
    "replay": REPLAY,
}
