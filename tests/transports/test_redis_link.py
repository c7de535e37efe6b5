"""RedisLink.send_all: one write, every reply in place, on the held connection or a pooled
one, across threads, forks, errors and close."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import redis

from conveyor.clients.redis import RedisLink, RedisOptions
from conveyor.core.errors import BrokerError, ConnectionLost
from conveyor.core.url import parse_url
from conveyor.testing.servers import LocalServer


@pytest.fixture
def link(redis_url: str) -> Iterator[RedisLink]:
    opened = RedisLink(parse_url(redis_url), RedisOptions())
    yield opened
    opened.close()


def test_replies_come_back_in_place_with_errors_as_values(link: RedisLink) -> None:
    replies = link.send_all("t", [("ECHO", b"a"), ("NO-SUCH-COMMAND",), ("ECHO", 7)])
    assert replies[0] == b"a" and replies[2] == b"7"
    assert isinstance(replies[1], redis.ResponseError)


def test_threads_at_once_each_get_their_own_replies(link: RedisLink) -> None:
    wrong: list[tuple[int, object]] = []

    def send(number: int) -> None:
        for i in range(200):
            expected = f"{number}-{i}".encode()
            got = link.send_all("t", [("ECHO", expected), ("ECHO", expected + b"!")])
            if got != [expected, expected + b"!"]:
                wrong.append((number, got))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert wrong == []


def test_a_cut_held_connection_fails_once_then_reconnects(own_redis: LocalServer) -> None:
    link = RedisLink(parse_url(own_redis.url), RedisOptions())
    try:
        assert link.send_all("t", [("ECHO", b"first")]) == [b"first"]
        admin = link.call("t", lambda client: client)
        admin.client_kill_filter(_type="normal", skipme=True)  # only on this own server
        with pytest.raises(ConnectionLost):
            link.send_all("t", [("PING",)])
        assert link.send_all("t", [("ECHO", b"back")]) == [b"back"]
    finally:
        link.close()


def test_a_forked_child_uses_a_connection_of_its_own(link: RedisLink) -> None:
    assert link.send_all("t", [("ECHO", b"parent")]) == [b"parent"]
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if its replies are its own
        ok = all(link.send_all("t", [("ECHO", f"c{i}")]) == [f"c{i}".encode()] for i in range(50))
        os._exit(0 if ok else 1)
    for i in range(50):
        assert link.send_all("t", [("ECHO", f"p{i}")]) == [f"p{i}".encode()]
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_close_drops_the_held_connection_and_later_use_opens_anew(link: RedisLink) -> None:
    assert link.send_all("t", [("ECHO", b"one")]) == [b"one"]
    link.close()
    assert link.send_all("t", [("ECHO", b"two")]) == [b"two"]


_ECHO_KEY = "return {KEYS[1], ARGV[1]}"


def test_a_script_runs_by_name_and_is_sent_again_after_the_server_forgot_it(
    own_redis: LocalServer,
) -> None:
    scripts = {"echo": _ECHO_KEY, "broken": "return redis.call('NO-SUCH-COMMAND')"}
    link = RedisLink(parse_url(own_redis.url), RedisOptions(), scripts)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        assert link.run("t", "echo", [b"k"], [1]) == [b"k", b"1"]  # unknown at first: EVAL
        before = admin.info("commandstats")
        assert link.run("t", "echo", [b"k2"], ["v"]) == [b"k2", b"v"]
        after = admin.info("commandstats")
        # The second call is one EVALSHA and nothing else (no SCRIPT EXISTS or LOAD).
        assert after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"] == 1
        assert after.get("cmdstat_eval", {}).get("calls", 0) == before["cmdstat_eval"]["calls"]
        admin.script_flush()
        assert link.run("t", "echo", [b"k3"], [2.5]) == [b"k3", b"2.5"]
        with pytest.raises(BrokerError, match="broken call"):
            link.run("broken call", "broken", [], [])
        assert link.run("t", "echo", [b"k4"], [b"x"]) == [b"k4", b"x"]  # still usable
    finally:
        admin.close()
        link.close()
