"""A producer with no conveyor code: the task message is built by hand (docs/protocol.md)
and enqueued with the broker's own client; a real worker process runs it."""

from __future__ import annotations

import json
import sqlite3
import struct
import time
import uuid
from urllib.parse import unquote, urlsplit

import redis

from conveyor import Conveyor
from tests.e2e.conftest import Urls, WorkerProcess


def task_body(task_id: str, task: str, args: list[object]) -> bytes:
    return json.dumps({"v": 1, "id": task_id, "task": task, "args": args, "kwargs": {}}).encode()


def envelope(body: bytes, task_id: str) -> bytes:
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
    return b"CV1" + struct.pack(">I", len(meta)) + meta + body


def _redis(url: str, queue: str, body: bytes, task_id: str) -> None:
    client = redis.Redis.from_url(url.split("?")[0])
    try:
        client.lpush(f"conveyor:{{{queue}}}:ready", b"1:" + envelope(body, task_id))
    finally:
        client.close()


def _sqlite(url: str, queue: str, body: bytes, task_id: str) -> None:
    path = urlsplit(url).path[1:]  # sqlite:///<path>: the path after the third slash
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO conveyor_messages (queue, state, priority, due, deliveries, body) "
            "VALUES (?, 0, 0, (julianday('now') - 2440587.5) * 86400.0, 0, ?)",
            (queue, envelope(body, task_id)),
        )


# `due` is "now" by the database server's clock, as the SQL transport measures it.
INSERT = (
    "INSERT INTO conveyor_messages (queue, state, priority, due, deliveries, body) "
    "VALUES (%s, 0, 0, {now}, 0, %s)"
)


def _postgresql(url: str, queue: str, body: bytes, task_id: str) -> None:
    import psycopg

    parts = urlsplit(url.split("?")[0])
    with psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        dbname=parts.path[1:],
    ) as db:
        db.execute(
            INSERT.format(now="EXTRACT(EPOCH FROM clock_timestamp())"),
            (queue, envelope(body, task_id)),
        )


def _mysql(url: str, queue: str, body: bytes, task_id: str) -> None:
    import pymysql

    parts = urlsplit(url.split("?")[0])
    db = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path[1:],
        autocommit=True,
    )
    try:
        with db.cursor() as cursor:
            cursor.execute(
                INSERT.format(now="UNIX_TIMESTAMP(NOW(6))"), (queue, envelope(body, task_id))
            )
    finally:
        db.close()


def _amqp(url: str, queue: str, body: bytes, task_id: str) -> None:
    import pika

    parts = urlsplit(url.split("?")[0])
    vhost = unquote(parts.path[1:]) or "/"  # amqp://host/ and amqp://host// are vhost "/"
    credentials = pika.PlainCredentials(parts.username or "guest", parts.password or "guest")
    parameters = pika.ConnectionParameters(parts.hostname, parts.port or 5672, vhost, credentials)
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(
            delivery_mode=2,
            content_type="application/json",
            correlation_id=task_id,
            message_id=uuid.uuid4().hex,
        )
        channel.basic_publish("", queue, body, properties)
    finally:
        connection.close()


def _zookeeper(url: str, queue: str, body: bytes, task_id: str) -> None:
    from kazoo.client import KazooClient

    parts = urlsplit(url.split("?")[0])
    root = parts.path.rstrip("/") or "/conveyor"
    client = KazooClient(hosts=parts.netloc.replace(";", ","))
    client.start(timeout=10)
    try:
        client.create(
            f"{root}/queues/{queue}/e/m0_0_0_",
            envelope(body, task_id),
            sequence=True,
            makepath=True,
        )
    finally:
        client.stop()


# docs/protocol.md, "Enqueueing from another language", one recipe per broker.
RECIPES = {
    "redis": _redis,
    "sqlite": _sqlite,
    "sql+postgresql": _postgresql,
    "sql+mysql": _mysql,
    "amqp": _amqp,
    "zookeeper": _zookeeper,
}


def enqueue(url: str, queue: str, body: bytes, task_id: str) -> None:
    scheme = url.split("://", 1)[0]
    assert scheme in RECIPES, f"no foreign-producer recipe for {scheme}:// in this test"
    RECIPES[scheme](url, queue, body, task_id)


def test_hand_built_message_runs(app: Conveyor, worker: WorkerProcess, urls: Urls) -> None:
    task_id = f"foreign-{uuid.uuid4()}"
    enqueue(
        urls.broker, worker.queue, task_body(task_id, "tests.e2e.e2e_tasks.add", [20, 22]), task_id
    )
    assert app.AsyncResult(task_id).get(timeout=20) == 42


def test_hand_built_garbage_is_dead_lettered(
    app: Conveyor, worker: WorkerProcess, urls: Urls
) -> None:
    task_id = f"foreign-{uuid.uuid4()}"
    enqueue(urls.broker, worker.queue, b'{"v": 1, "task": 5}', task_id)
    result = app.AsyncResult(task_id)
    assert result.get(timeout=20, propagate=False) is not None
    assert result.failed()
    reasons = [
        d.reason
        for d in app.transport.dead_letters(worker.queue)
        if d.message.correlation_id == task_id
    ]
    assert reasons and "ProtocolError" in reasons[0]
