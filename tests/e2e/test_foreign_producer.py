"""A producer with no conveyor code: the task message is built by hand (docs/protocol.md)
and enqueued with the broker's own client; a real worker process runs it."""

from __future__ import annotations

import json
import sqlite3
import struct
import time
import uuid
from urllib.parse import urlsplit

import redis

from conveyor import Conveyor
from tests.e2e.conftest import WorkerProcess


def envelope(task_id: str, task: str, args: list[object]) -> bytes:
    body = json.dumps({"v": 1, "id": task_id, "task": task, "args": args, "kwargs": {}})
    meta = json.dumps(
        {
            "id": uuid.uuid4().hex,
            "ct": "application/json",
            "ce": "utf-8",
            "p": 0,
            "ts": time.time(),
            "h": {},
            "cid": task_id,
        },
        separators=(",", ":"),
    ).encode()
    return b"CV1" + struct.pack(">I", len(meta)) + meta + body.encode()


def enqueue(url: str, queue: str, data: bytes) -> None:
    if url.startswith("redis://"):
        client = redis.Redis.from_url(url.split("?")[0])
        try:
            client.lpush(f"conveyor:{{{queue}}}:ready", b"1:" + data)
        finally:
            client.close()
        return
    path = urlsplit(url).path[1:]  # sqlite:///<path>: the path after the third slash
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO conveyor_messages (queue, state, priority, due, deliveries, body) "
            "VALUES (?, 0, 0, (julianday('now') - 2440587.5) * 86400.0, 0, ?)",
            (queue, data),
        )


def test_hand_built_message_runs(app: Conveyor, worker: WorkerProcess, e2e_url: str) -> None:
    task_id = f"foreign-{uuid.uuid4()}"
    enqueue(e2e_url, worker.queue, envelope(task_id, "tests.e2e.e2e_tasks.add", [20, 22]))
    assert app.AsyncResult(task_id).get(timeout=20) == 42


def test_hand_built_garbage_is_dead_lettered(
    app: Conveyor, worker: WorkerProcess, e2e_url: str
) -> None:
    task_id = f"foreign-{uuid.uuid4()}"
    data = envelope(task_id, "x", [])
    garbage = data[: data.index(b'{"v"')] + b'{"v": 1, "task": 5}'
    enqueue(e2e_url, worker.queue, garbage)
    result = app.AsyncResult(task_id)
    assert result.get(timeout=20, propagate=False) is not None
    assert result.failed()
    reasons = [
        d.reason
        for d in app.transport.dead_letters(worker.queue)
        if d.message.correlation_id == task_id
    ]
    assert reasons and "ProtocolError" in reasons[0]
