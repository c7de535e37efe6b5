"""The Redis event store: a stream for the log, a hash per task, sorted sets to list them.

Keys (prefix ``conveyor-events:``, behind ``<namespace>:`` with a namespace): ``log`` (a
stream of batches, one entry per `add`, capped near max_events / LOG_BATCHES entries; its
ids are the cursor), ``task:<id>`` (a hash, the fold, expiring), ``timeline:<id>`` (the
task's events as JSON lines, expiring), ``tasks`` (a sorted set of task ids by last update,
trimmed by age and size on every write) with its narrower twins ``state:<state>``,
``name:<name>`` and ``host:<worker>`` (trimmed by age when written, and of expired tasks
when read), ``workers`` (a hash: hostname -> last worker event) and ``minute:<epoch>``
(hashes of per-minute counts). The fold into a task's hash, its timeline and its index
entries is a Lua script, so writers in any order agree on the state and the last update
(base.merge's rule); one call folds up to FOLD_TASKS tasks, so a batch costs a few
commands, not several per task.

Searching walks the narrowest index newest first and filters in Python, reading at most
SCAN_LIMIT rows or for SCAN_BUDGET seconds: a text or id-prefix search over a large
history finds the matches among the newest tasks of its index that it had time to read
(a page must paint within a second). The SQL store has no such limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import Any, TypeVar

import redis

from conveyor.backends.base import namespaced
from conveyor.backends.events.base import (
    ROW_FIELDS,
    SERIES_TYPES,
    STATES,
    Event,
    EventStore,
    TaskQuery,
    TaskRow,
    encode,
    folded,
    minute,
)
from conveyor.backends.redis import translated
from conveyor.core.url import URL

T = TypeVar("T")
PREFIX = "conveyor-events:"
SCAN_LIMIT = 100_000
SCAN_BUDGET = 0.4  # seconds a filtered search may read rows before it answers with what it has
_CHUNK = 500
# Tasks per call of the fold script: a call per task cost more than the fold in redis-py
# and in Redis, and one call blocks the server, so a few dozen tasks at a time.
FOLD_TASKS = 64
_IN_SCRIPT = frozenset({"task_id", "state", "state_key", "updated_at"})  # fold.lua's own
TIMELINE_BYTES = 256 * 1024  # a task's timeline stops growing past this (a retry loop)
LOG_BATCHES = 50  # the log keeps about max_events / LOG_BATCHES batches
_FLOATS = {"state_key", "updated_at", "runtime", "sent_at", "received_at", "started_at", "done_at"}

# The fold script (fold.lua, package data): one call per FOLD_TASKS tasks of a batch.
_FOLD = (
    files("conveyor.backends.events")
    .joinpath("fold.lua")
    .read_text(encoding="utf-8")
    .replace("TIMELINE_BYTES", str(TIMELINE_BYTES))
)


def _decode(task_id: str, raw: dict[bytes, bytes]) -> TaskRow:
    data: dict[str, Any] = {"task_id": task_id}
    for key, value in raw.items():
        name, text = key.decode(), value.decode()
        if name in _FLOATS:
            data[name] = float(text)
        elif name == "retries":
            data[name] = int(text)
        else:
            data[name] = text
    return TaskRow.from_dict(data)


class RedisEventStore(EventStore):
    def __init__(
        self,
        url: URL,
        *,
        expires: float,
        max_tasks: int,
        namespace: str = "",
        timeout: float = 10.0,
    ) -> None:
        super().__init__(expires=expires, max_tasks=max_tasks)
        self.url = url
        self._prefix = namespaced(namespace, PREFIX)
        self._client: Any = redis.Redis.from_url(
            url.without_query().unredacted(), socket_connect_timeout=timeout, socket_timeout=timeout
        )
        self._fold = self._client.register_script(_FOLD)
        self._ttl_ms = int(expires * 1000)

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        with translated(what, self.url):
            return operation()

    def add(self, events: Sequence[Event], lines: Sequence[str] | None = None) -> None:
        if not events:
            return
        now = time.time()
        pipe = self._client.pipeline(transaction=False)
        timelines: dict[str, list[str]] = {}
        counts: dict[tuple[int, str], int] = {}
        lines = encode(events, lines)
        for event, data in zip(events, lines, strict=True):
            kind = str(event.get("type", ""))
            task_id = event.get("uuid")
            if kind.startswith("task-") and isinstance(task_id, str):
                timelines.setdefault(task_id, []).append(data)
            if kind.startswith("worker-") and event.get("hostname"):
                pipe.hset(self._prefix + "workers", str(event["hostname"]), data)
            if kind in SERIES_TYPES:
                bucket = (minute(event.get("timestamp") or now), kind)
                counts[bucket] = counts.get(bucket, 0) + 1
        # One log entry per batch: a command per event would cost more than the event.
        batches = max(1000, self.max_events // LOG_BATCHES)
        pipe.xadd(self._prefix + "log", {"b": "\n".join(lines)}, maxlen=batches, approximate=True)
        for (stamp, kind), count in counts.items():
            pipe.hincrby(f"{self._prefix}minute:{stamp}", kind, count)
            pipe.pexpire(f"{self._prefix}minute:{stamp}", self._ttl_ms)
        indexes = {self._prefix + "tasks", *(f"{self._prefix}state:{state}" for state in STATES)}
        keys: list[str] = []
        args: list[Any] = [self._ttl_ms, self._prefix]
        for task_id, row in folded(events).items():
            pairs: list[Any] = []
            for name in ROW_FIELDS:
                value = row.get(name)
                if value is not None and name not in _IN_SCRIPT:
                    pairs += [name, value]
            timeline = "".join(line + "\n" for line in timelines.get(task_id, ()))
            keys += [f"{self._prefix}task:{task_id}", f"{self._prefix}timeline:{task_id}"]
            args += [task_id, row["state"], row["state_key"], row["updated_at"], timeline]
            args += [len(pairs) // 2, *pairs]
            if len(keys) >= 2 * FOLD_TASKS:
                self._fold(keys=keys, args=args, client=pipe)
                keys, args = [], [self._ttl_ms, self._prefix]
            indexes.update(
                f"{self._prefix}{kind}:{row[field]}"
                for kind, field in (("name", "name"), ("host", "hostname"))
                if row.get(field)
            )
        if keys:
            self._fold(keys=keys, args=args, client=pipe)
        for index in indexes:
            pipe.zremrangebyscore(index, "-inf", f"({now - self.expires}")
        pipe.zremrangebyrank(self._prefix + "tasks", 0, -(self.max_tasks + 1))
        self._call("storing events", pipe.execute)

    def since(self, cursor: str | None, limit: int = 1000) -> tuple[list[Event], str | None]:
        """Whole batches after `cursor`, as many as keep the answer near `limit` events."""
        log = self._prefix + "log"
        if cursor is None:
            last = self._call("reading events", lambda: self._client.xrevrange(log, count=1))
            return [], last[0][0].decode() if last else "0-0"
        entries = self._call(
            "reading events", lambda: self._client.xrange(log, f"({cursor}", count=10)
        )
        found: list[Event] = []
        for entry_id, fields in entries:
            found.extend(json.loads(line) for line in fields[b"b"].split(b"\n") if line)
            cursor = entry_id.decode()
            if len(found) >= limit:
                break
        return found, cursor

    def _rows(self, ids: list[bytes], index: str) -> list[TaskRow]:
        """The rows of `ids`; ids whose row expired are dropped from `index` on the way."""
        pipe = self._client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hgetall(f"{self._prefix}task:{task_id.decode()}")
        raws = self._call("reading tasks", pipe.execute)
        gone = [i for i, raw in zip(ids, raws, strict=True) if not raw]
        if gone:
            self._call("dropping expired tasks", lambda: self._client.zrem(index, *gone))
        return [_decode(i.decode(), raw) for i, raw in zip(ids, raws, strict=True) if raw]

    def tasks(self, query: TaskQuery) -> list[TaskRow]:
        """Reads the narrowest index the query names (name, worker, state, else all tasks)
        newest first, filtering by the other criteria in Python."""
        top = "+inf" if query.until is None else query.until
        bottom = "-inf" if query.since is None else query.since
        criteria = {"name": query.name, "host": query.hostname, "state": query.state}
        narrowest = next(((kind, value) for kind, value in criteria.items() if value), None)
        index = self._prefix + ("tasks" if narrowest is None else f"{narrowest[0]}:{narrowest[1]}")
        others = [v for v in (*criteria.values(), query.task_id, query.text) if v]
        if len(others) <= (narrowest is not None):  # the index alone answers: read the page
            ids = self._call(
                "listing tasks",
                lambda: self._client.zrevrangebyscore(
                    index, top, bottom, start=query.offset, num=query.limit
                ),
            )
            return self._rows(ids, index)
        found: list[TaskRow] = []
        wanted = query.offset + query.limit
        deadline = time.monotonic() + SCAN_BUDGET
        for start in range(0, SCAN_LIMIT, _CHUNK):
            ids = self._call(
                "searching tasks",
                lambda start=start: self._client.zrevrangebyscore(  # type: ignore[misc]
                    index, top, bottom, start=start, num=_CHUNK
                ),
            )
            found.extend(row for row in self._rows(ids, index) if query.matches(row))
            if len(found) >= wanted or len(ids) < _CHUNK or time.monotonic() > deadline:
                break
        return found[query.offset : wanted]

    def task(self, task_id: str) -> TaskRow | None:
        raw = self._call(
            "reading a task", lambda: self._client.hgetall(f"{self._prefix}task:{task_id}")
        )
        return _decode(task_id, raw) if raw else None

    def timeline(self, task_id: str) -> list[Event]:
        text = self._call(
            "reading a timeline", lambda: self._client.get(f"{self._prefix}timeline:{task_id}")
        )
        return [json.loads(line) for line in (text or b"").split(b"\n") if line]

    def workers(self) -> dict[str, Event]:
        raw = self._call("reading workers", lambda: self._client.hgetall(self._prefix + "workers"))
        horizon = time.time() - self.expires
        found = {k.decode(): json.loads(v) for k, v in raw.items()}
        return {k: v for k, v in found.items() if (v.get("timestamp") or 0) >= horizon}

    def series(self, since: float) -> dict[int, dict[str, int]]:
        stamps = list(range(minute(since), minute(time.time()) + 60, 60))
        pipe = self._client.pipeline(transaction=False)
        for stamp in stamps:
            pipe.hgetall(f"{self._prefix}minute:{stamp}")
        raws = self._call("reading counts", pipe.execute)
        return {
            stamp: {k.decode(): int(v) for k, v in raw.items()}
            for stamp, raw in zip(stamps, raws, strict=True)
            if raw
        }

    def close(self) -> None:
        self._client.close()
