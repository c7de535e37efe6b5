"""Which store beat uses: the broker's when it can hold the state, else the backend's (so
AMQP goes through the backend), else a clear error; `--schedule FILE` and `beat_store_url`."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.beat.stores import open_store, store_url
from conveyor.core.errors import ConfigurationError


def conf(broker: str, backend: str, **settings: object) -> object:
    return Conveyor("stores", broker=broker, backend=backend, **settings).conf


def test_the_broker_store_first_then_the_backend() -> None:
    assert store_url(conf("redis://h:1/0", "sqlite:///r.db")) == "redis://h:1/0"
    assert store_url(conf("amqp://guest@h//", "redis://h:2/1")) == "redis://h:2/1"
    assert store_url(conf("amqp://h//", "sql+postgresql://u@h/db")) == "sql+postgresql://u@h/db"
    assert store_url(conf("zookeeper://h:2181/c", "memcached://h:11211")) == (
        "zookeeper://h:2181/c"
    )
    default = Conveyor("stores").conf
    assert store_url(default) == "sqlite:///conveyor.db"  # the embedded default


def test_explicit_store_and_schedule_file(tmp_path: Path) -> None:
    settings = conf("amqp://h//", "sqlite:///r.db", beat_store_url="redis://h:3/2")
    assert store_url(settings) == "redis://h:3/2"
    path = tmp_path / "beat-state.db"
    assert store_url(settings, str(path)) == f"sqlite:///{path}"


def test_amqp_with_memcached_keeps_the_state_in_memcached() -> None:
    assert store_url(conf("amqp://h//", "memcached://h:11211")) == "memcached://h:11211"


def test_no_store_anywhere_is_a_clear_error() -> None:
    from conveyor.core.url import parse_url

    settings = conf("amqp://guest:secret@h//", "sqlite:///r.db")
    settings.result_backend = "plugin://h:1"  # a backend beat cannot keep state in
    with pytest.raises(ConfigurationError, match=r"beat_store_url.*--schedule FILE") as caught:
        store_url(settings)
    assert "secret" not in str(caught.value) and str(parse_url("plugin://h:1")) in str(caught.value)


def test_a_url_that_cannot_hold_the_state_is_named() -> None:
    with pytest.raises(ConfigurationError, match="amqp://h cannot hold beat's state"):
        open_store("amqp://h", "ns")


def test_the_broker_urls_own_options_are_left_to_the_broker(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/b.db?poll_interval=0.5&connect_timeout=2", "ns")
    try:
        assert store.claim("e", 1.0)
    finally:
        store.close()


def test_status_reads_the_leader_and_each_entrys_times(tmp_path: Path) -> None:
    from conveyor.beat.scheduler import Beat
    from conveyor.beat.status import beat_status

    app = Conveyor("status", broker=f"sqlite:///{tmp_path}/b.db", backend="memory://status")
    app.task(name="tasks.ping")(lambda: None)
    app.conf.beat_schedule = {"ping": {"task": "tasks.ping", "schedule": 30}}
    before = beat_status(app)
    assert before.leader is None and before.entries[0].last_run is None
    beat = Beat(app, open_store(store_url(app.conf), "status"), send=lambda *a: None)
    beat.tick()
    after = beat_status(app)
    assert after.leader == beat.holder
    (entry,) = after.entries
    assert entry.schedule == "<schedule every 30 s>" and entry.last_run is not None
    assert entry.next_run is not None and (entry.next_run - entry.last_run).total_seconds() == 30
    beat.close()
