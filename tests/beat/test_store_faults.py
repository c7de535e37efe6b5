"""A cut connection to the store (through the TCP fault proxy) costs beat neither a tick nor a
double: the failing round is logged, the next one reconnects and goes on."""

from __future__ import annotations

import uuid

import pytest

from conveyor import Conveyor
from conveyor.beat.scheduler import Beat
from conveyor.beat.stores import open_store
from conveyor.core.errors import ConveyorError
from conveyor.testing.proxy import proxy_in_front_of
from tests.beat.conftest import Clock, Sent


@pytest.mark.parametrize("server", ["redis_url", "postgres_url"])
def test_a_cut_store_connection_loses_and_doubles_nothing(
    server: str, request: pytest.FixtureRequest, app: Conveyor, clock: Clock, sent: Sent
) -> None:
    url: str = request.getfixturevalue(server)
    app.conf.beat_schedule = {"ping": {"task": "tasks.ping", "schedule": 1.0}}
    namespace = f"faults-{uuid.uuid4().hex[:10]}"
    with proxy_in_front_of(url) as (proxy, proxied):
        beat = Beat(app, open_store(proxied, namespace), clock=clock, send=sent)
        errors = 0
        try:
            for step in range(40):  # 10 s of controlled time, a cut every 2 s
                if step % 8 == 7:
                    assert proxy.cut() >= 1
                try:
                    beat.tick()
                except ConveyorError:
                    errors += 1  # the round is lost; run() logs it and tries again
                clock.advance(0.25)
        finally:
            beat.close()
    times = sent.times("ping")
    assert len(times) == len(set(times)), "a tick was sent twice"
    assert times == [times[0] + n for n in range(len(times))], "a tick was skipped"
    assert len(times) >= 9 and errors <= 5, errors  # the clients reconnect (0 here)
