"""`conveyor beat` refuses to start, naming the entry and the part, with nothing sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from conveyor.cli import main
from tests.beat import beat_e2e_tasks


@pytest.fixture
def app_module() -> Iterator[None]:
    app = beat_e2e_tasks.app
    saved = dict(app.conf.beat_schedule)
    app.conf.broker_url = app.conf.result_backend = "memory://beat-cli"
    yield
    app.conf.beat_schedule = saved
    app.close()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"task": "beat_e2e.tick", "schedule": "0 25 * * *"}, "crontab field hour='25'"),
        ({"task": "beat_e2e.nope", "schedule": 5}, "task 'beat_e2e.nope' is not registered"),
        ({"task": "beat_e2e.tick", "schedule": "0 0 30 2 *"}, "never fires"),
    ],
)
def test_beat_refuses_to_start_naming_the_entry(
    app_module: None, entry: dict[str, object], message: str
) -> None:
    beat_e2e_tasks.app.conf.beat_schedule = {"nightly-report": entry}
    result = CliRunner().invoke(main, ["-A", "tests.beat.beat_e2e_tasks", "beat"])
    assert result.exit_code != 0
    assert "beat entry 'nightly-report'" in result.output and message in result.output
    assert beat_e2e_tasks.app.transport.size(beat_e2e_tasks.app.conf.task_default_queue) == 0


def test_status_prints_the_leader_and_each_entry(app_module: None) -> None:
    from conveyor.beat.service import build

    beat_e2e_tasks.app.conf.beat_schedule = {
        "every-minute": {"task": "beat_e2e.tick", "schedule": 60}
    }
    args = ["-A", "tests.beat.beat_e2e_tasks", "beat", "--status"]
    before = CliRunner().invoke(main, args)
    assert before.exit_code == 0, before.output
    assert "leader: none" in before.output and "last never" in before.output
    running = build(beat_e2e_tasks.app)
    running.tick()
    after = CliRunner().invoke(main, args)
    running.close()
    assert f"leader: {running.holder}" in after.output
    assert "every-minute: beat_e2e.tick <schedule every 60 s>  last 20" in after.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lease-timeout", "-1"], "beat_lease_timeout must be a positive number of seconds"),
        (["--max-interval", "-1"], "beat_max_loop_interval must be a positive number"),
    ],
)
def test_bad_beat_options_are_named(app_module: None, args: list[str], message: str) -> None:
    beat_e2e_tasks.app.conf.beat_schedule = {"e": {"task": "beat_e2e.tick", "schedule": 5}}
    result = CliRunner().invoke(main, ["-A", "tests.beat.beat_e2e_tasks", "beat", *args])
    assert result.exit_code != 0 and message in result.output, result.output


def test_a_bad_lease_setting_is_named(app_module: None) -> None:
    beat_e2e_tasks.app.conf.beat_schedule = {}
    beat_e2e_tasks.app.conf.beat_lease_timeout = "ten seconds"
    try:
        result = CliRunner().invoke(main, ["-A", "tests.beat.beat_e2e_tasks", "beat"])
    finally:
        del beat_e2e_tasks.app.conf["beat_lease_timeout"]
    assert "beat_lease_timeout must be a positive number of seconds, not 'ten seconds'" in (
        result.output
    )
