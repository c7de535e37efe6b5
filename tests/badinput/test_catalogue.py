"""The bad-input catalogue (issue 12): one table, one test. Every row is something a user or
a foreign producer gets wrong; each ends in a conveyor error that names the bad part
(nothing sent), or in a dead letter with the reason (nothing lost), or in the documented
behaviour.

Rows that need a real server ask for its fixture by name; the rest run on the memory
broker with an in-process worker.
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conveyor import Conveyor, states
from conveyor.app import protocol
from conveyor.app.exceptions import InvalidTaskOption
from conveyor.backends.base import ResultRecord
from conveyor.backends.errors import RemoteError
from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    EncodeError,
    InvalidQueueName,
    InvalidURL,
    MessageTooLarge,
    UnknownScheme,
)
from conveyor.core.message import Message
from conveyor.core.registry import create_backend, create_transport
from conveyor.core.url import parse_url
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker


class Refused(Exception):
    """A trusted exception class whose constructor wants two arguments."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"{code}: {why}")


@dataclass
class Env:
    app: Conveyor
    start_worker: Callable[..., Worker]
    request: pytest.FixtureRequest
    closing: list[Any] = field(default_factory=list)

    def url(self, kind: str) -> str:
        return str(self.request.getfixturevalue(f"{kind}_url"))

    def transport(self, url: str) -> Any:
        transport = create_transport(url, connect_timeout=2.0)
        self.closing.append(transport)
        return transport


@dataclass(frozen=True)
class Raises:
    """`action(env)` raises `error`, its message contains every fragment (and no secret)."""

    action: Callable[[Env], Any]
    error: type[BaseException]
    fragments: tuple[str, ...]
    secret: str = ""


@dataclass(frozen=True)
class DeadLetter:
    """A foreign producer publishes `message`; the worker dead-letters it with `reason`."""

    message: Message
    reason: str


@dataclass(frozen=True)
class Behaves:
    """`check(env)` asserts the documented behaviour itself."""

    check: Callable[[Env], None]


def _task_body(**fields: Any) -> bytes:
    return protocol.Serializer().encode({"v": 1, **fields})[0]


def _add(env: Env) -> Any:
    @env.app.task(name="catalogue.add")
    def add(x: Any = 0, when: Any = None) -> Any:
        return x

    return add


def _declare(env: Env, **options: Any) -> Any:
    return env.app.task(name=f"catalogue.t{uuid.uuid4().hex[:6]}", **options)(lambda: None)


def _tls_to_plaintext(env: Env, kind: str, scheme: str) -> None:
    url = parse_url(env.url(kind))
    env.transport(f"{scheme}://{str(url).split('://', 1)[1]}").size("catalogue")


def _redeclared(env: Env) -> None:
    queue = f"catalogue-{uuid.uuid4().hex[:8]}"
    classic = env.transport(env.url("amqp"))
    quorum = env.transport(f"{env.url('amqp')}?queue_type=quorum")
    classic.publish(queue, Message(b"kept"))
    try:
        quorum.publish(queue, Message(b"x"))
    finally:
        assert classic.size(queue) == 1, "the first declaration's message was lost"
        classic.delete(queue)


def _naive_eta_in_app_timezone(env: Env) -> None:
    env.app.conf.timezone = "Europe/Berlin"
    berlin = ZoneInfo("Europe/Berlin")
    naive = (datetime.datetime.now(berlin) + datetime.timedelta(seconds=1)).replace(tzinfo=None)
    result = _add(env).apply_async(eta=naive)  # due in 1 s only if read as Berlin time
    (delivery,) = env.app.transport.fetch("default", timeout=3)
    body = protocol.decode(delivery.message, env.app.serializer)
    expected = naive.replace(tzinfo=berlin).timestamp()
    assert protocol.parse_time(body.eta or "") == pytest.approx(expected, abs=0.01)
    assert body.id == result.id
    delivery.ack()


def _counted(env: Env) -> tuple[Any, list[int]]:
    runs: list[int] = []

    @env.app.task(name="catalogue.counted")
    def counted(x: int) -> int:
        runs.append(x)
        return x

    return counted, runs


def _settled(env: Env, worker: Worker) -> bool:
    return env.app.transport.size("default") == 0 and worker.consumer.held == 0


def _task_id_reused(env: Env) -> None:
    """After the first finished: the second message is acked without running (its stored
    state says done), nothing is dead-lettered, the first result stands."""
    counted, runs = _counted(env)
    worker = env.start_worker()
    first = counted.apply_async((1,), task_id="catalogue-reused")
    assert first.get(timeout=10) == 1
    counted.apply_async((2,), task_id="catalogue-reused")
    assert wait_until(lambda: _settled(env, worker), 5)
    assert runs == [1], "the reused id ran again"
    assert env.app.transport.dead_letters("default") == []
    assert env.app.AsyncResult("catalogue-reused").get(timeout=5) == 1, "a ready state changed"


def _task_id_reused_while_pending(env: Env) -> None:
    """Both sent before either ran: each may run (as a duplicate delivery may), the first
    outcome stored stands, and a later run's outcome is dropped with a warning naming
    the id; nothing is dead-lettered."""
    caplog: pytest.LogCaptureFixture = env.request.getfixturevalue("caplog")
    counted, runs = _counted(env)
    counted.apply_async((1,), task_id="catalogue-reused-pending")
    counted.apply_async((2,), task_id="catalogue-reused-pending")
    worker = env.start_worker(concurrency=1)  # one slot: the queue's order, one at a time
    assert wait_until(lambda: _settled(env, worker) and bool(runs), 10)
    result = env.app.AsyncResult("catalogue-reused-pending")
    assert result.get(timeout=5) == 1 == runs[0], "the first outcome stored does not stand"
    assert env.app.transport.dead_letters("default") == []
    if len(runs) == 2:
        assert any(
            "catalogue-reused-pending" in r.getMessage() and "not kept" in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]


def _unrebuildable_exception(env: Env) -> None:
    @env.app.task(name="catalogue.refuse")
    def refuse() -> None:
        raise Refused(7, "no")

    env.start_worker()
    with pytest.raises(RemoteError, match="Refused") as raised:
        refuse.delay().get(timeout=10)
    assert "7: no" in str(raised.value)


def _too_large_for_memcached(env: Env) -> None:
    backend = create_backend(env.url("memcached"))
    task_id = f"catalogue-{uuid.uuid4().hex}"
    backend.store(ResultRecord(task_id, states.SUCCESS, result="x" * (2 * 1024 * 1024)))
    record = backend.get(task_id)
    assert record is not None and record.state == states.FAILURE
    assert "ResultTooLarge" in str(record.result) and "limit" in str(record.result)


CATALOGUE: dict[str, Raises | DeadLetter | Behaves] = {
    # URLs, schemes, passwords
    "url without scheme": Raises(lambda e: parse_url("not a url"), InvalidURL, ("no scheme",)),
    "unknown scheme": Raises(lambda e: create_transport("foo://x"), UnknownScheme, ("'foo'",)),
    "port out of range": Raises(lambda e: parse_url("redis://h:99999/0"), InvalidURL, ("port",)),
    "bad percent escape": Raises(
        lambda e: parse_url("redis://:pw%zzsecret@h:1/0"),
        InvalidURL,
        ("percent escape", "password"),
        secret="pw%zzsecret",
    ),
    "raw slash in password": Raises(
        lambda e: parse_url("redis://:pw/secret@h:1/0"), InvalidURL, ("%2F",), secret="pw/secret"
    ),
    # unreachable, refused, wrong password, TLS to a plaintext port
    "unknown host": Raises(
        lambda e: e.transport("redis://nonexistent.invalid:6379/0").size("q"),
        BrokerUnavailable,
        ("nonexistent.invalid",),
    ),
    "refused port": Raises(
        lambda e: e.transport("redis://127.0.0.1:1/0").size("q"), BrokerUnavailable, (":1",)
    ),
    "wrong password": Raises(
        lambda e: e.transport(
            replace(parse_url(e.url("amqp")), password="catalogue-wrong").unredacted()
        ).size("q"),
        AuthenticationFailed,
        ("refused the credentials",),
        secret="catalogue-wrong",
    ),
    "TLS to a plaintext Redis": Raises(
        lambda e: _tls_to_plaintext(e, "redis", "rediss"), BrokerUnavailable, ("rediss://",)
    ),
    "TLS to a plaintext RabbitMQ": Raises(
        lambda e: _tls_to_plaintext(e, "amqp", "amqps"), BrokerUnavailable, ("SSL",)
    ),
    # queue names
    "queue name with a space": Raises(
        lambda e: _add(e).apply_async(queue="a b"), InvalidQueueName, ("'a b'",)
    ),
    "empty queue name": Raises(lambda e: _add(e).apply_async(queue=""), InvalidQueueName, ("''",)),
    "queue redeclared with other arguments": Raises(
        _redeclared, BrokerError, ("PRECONDITION_FAILED", "x-max-priority")
    ),
    # arguments
    "NaN argument": Raises(
        lambda e: _add(e).apply_async(kwargs={"when": math.nan}), EncodeError, ("kwargs.when",)
    ),
    "unserializable argument": Raises(
        lambda e: _add(e).apply_async(({"points": [object()]},)),
        EncodeError,
        ("args[0].points[0]", "builtins.object"),
    ),
    "oversized payload": Raises(
        lambda e: _add(e).delay("x" * (17 * 1024 * 1024)), MessageTooLarge, ("limit",)
    ),
    "deep JSON": Raises(
        lambda e: _add(e).delay(eval("[" * 100 + "]" * 100)), EncodeError, ("deeper than 64",)
    ),
    # bodies from a foreign producer
    "truncated body": DeadLetter(Message(b'{"v":1,"id":"x","ta'), "DecodeError"),
    "non-UTF-8 body": DeadLetter(Message(b"\xff\xfe\xfa{"), "DecodeError"),
    "wrong content type": DeadLetter(Message(b"hello", content_type="text/plain"), "'text/plain'"),
    "unknown task name": DeadLetter(
        Message(_task_body(id="catalogue-unknown", task="no.such.task")), "no.such.task"
    ),
    "missing task field": DeadLetter(Message(_task_body(id="catalogue-no-task")), "'task'"),
    "body not an object": DeadLetter(Message(b"[1, 2]"), "must be an object"),
    "old protocol version": DeadLetter(
        Message(protocol.Serializer().encode({"v": 0, "id": "a", "task": "b"})[0]), "version"
    ),
    # call and task options
    "negative countdown": Raises(
        lambda e: _add(e).apply_async(countdown=-5), InvalidTaskOption, ("countdown",)
    ),
    "naive eta": Behaves(_naive_eta_in_app_timezone),
    "expires before eta": Raises(
        lambda e: _add(e).apply_async(countdown=60, expires=5),
        InvalidTaskOption,
        ("expires", "eta"),
    ),
    "priority out of range": Raises(
        lambda e: _add(e).apply_async(priority=1000), InvalidTaskOption, ("priority", "0-255")
    ),
    "negative max_retries": Raises(
        lambda e: _declare(e, max_retries=-1), InvalidTaskOption, ("max_retries",)
    ),
    "negative retry backoff": Raises(
        lambda e: _declare(e, retry_backoff=-1.0), InvalidTaskOption, ("retry_backoff",)
    ),
    "infinite retry delay": Raises(
        lambda e: _declare(e, default_retry_delay=math.inf),
        InvalidTaskOption,
        ("default_retry_delay",),
    ),
    "zero time limit": Raises(
        lambda e: _declare(e, time_limit=0), InvalidTaskOption, ("time_limit",)
    ),
    # ids, exceptions, results
    "task id reused": Behaves(_task_id_reused),
    "task id reused while the first is pending": Behaves(_task_id_reused_while_pending),
    "exception that cannot be rebuilt": Behaves(_unrebuildable_exception),
    "result too large for Memcached": Behaves(_too_large_for_memcached),
}


@pytest.mark.parametrize("row", list(CATALOGUE), ids=list(CATALOGUE))
def test_bad_input(
    row: str, app: Conveyor, start_worker: Callable[..., Worker], request: pytest.FixtureRequest
) -> None:
    case = CATALOGUE[row]
    env = Env(app, start_worker, request)
    try:
        if isinstance(case, Raises):
            with pytest.raises(case.error) as raised:
                case.action(env)
            text = str(raised.value)
            for fragment in case.fragments:
                assert fragment in text, f"{fragment!r} not named in {text!r}"
            assert not case.secret or case.secret not in text
            assert app.transport.size("default") == 0, "something was sent"
        elif isinstance(case, DeadLetter):
            app.transport.publish("default", case.message)
            start_worker()
            assert wait_until(lambda: app.transport.dead_letters("default") != [], 10)
            (dead,) = app.transport.dead_letters("default")
            assert dead.message == case.message, "the dead letter is not the message as sent"
            assert case.reason in dead.reason, dead.reason
        else:
            case.check(env)
    finally:
        for transport in env.closing:
            transport.close()
