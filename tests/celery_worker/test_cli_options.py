"""The worker's Celery command-line options and the global ones, short of running a worker."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conveyor.app.loader import CLI_SETTINGS_ENV, load_app
from conveyor.cli import main
from conveyor.cli.worker_options import CommandLine, expand_hostname, parse_autoscale
from conveyor.core.errors import ConfigurationError
from conveyor.worker.recycle import resident_kib, used_up
from conveyor.worker.worker import Worker


def test_hostname_expansion_as_celery() -> None:
    host = "box.example.com"
    assert expand_hostname("worker1@%h", host) == "worker1@box.example.com"
    assert expand_hostname("%n-%d", host) == "box-example.com"
    assert expand_hostname("w@%n%%", host) == "w@box%"
    with pytest.raises(click.BadParameter, match="unknown %x"):
        expand_hostname("w@%x", host)


def test_autoscale_is_max_comma_min() -> None:
    assert parse_autoscale("10,3") == (10, 3)
    assert parse_autoscale("4") == (4, 0)
    for bad in ("", "a,b", "3,10", "0", "1,2,3"):
        with pytest.raises(click.BadParameter):
            parse_autoscale(bad)


def test_minus_a_finds_proj_celery_and_proj_conveyor() -> None:
    found = load_app("tests.celery_worker.findable.proj_celery")
    assert found.main == "proj_celery"
    assert load_app("tests.celery_worker.findable.proj_conveyor").main == "proj_conveyor"
    with pytest.raises(ConfigurationError, match="no Conveyor app"):
        load_app("tests.celery_worker.findable")


def test_global_options_reach_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLI_SETTINGS_ENV, "")  # restored (removed) after the test
    seen: dict[str, str] = {}

    @main.command("show-settings", hidden=True)
    @click.pass_context
    def show(ctx: click.Context) -> None:
        app = load_app(ctx.obj["app_path"])
        seen.update(broker=app.conf.broker_url, backend=app.conf.result_backend)
        seen.update(timezone=app.conf.timezone)

    try:
        result = CliRunner().invoke(
            main,
            [
                "-A",
                "tests.celery_worker.findable.proj_celery",
                "-b",
                "memory://from-cli",
                "--result-backend",
                "memory://results-cli",
                "--config",
                "tests.celery_worker.findable.cli_config",
                "show-settings",
            ],
        )
    finally:
        main.commands.pop("show-settings")
    assert result.exit_code == 0, result.output
    assert seen == {
        "broker": "memory://from-cli",
        "backend": "memory://results-cli",
        "timezone": "Europe/Paris",
    }
    # The settings travel in the environment to the processes the worker starts.
    assert json.loads(os.environ[CLI_SETTINGS_ENV])["broker_url"] == ("memory://from-cli")


def test_bad_worker_options_name_the_option() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["-A", "x", "worker", "--autoscale", "3,10"])
    assert (
        out.exit_code == 2
        and "--autoscale" in out.output
        and "MIN 10 is above MAX 3" in (out.output)
    )
    out = runner.invoke(main, ["-A", "x", "worker", "-P", "eventlet"])
    assert out.exit_code == 2 and "eventlet" in out.output
    out = runner.invoke(main, ["--workdir", "/nonexistent-dir", "transports"])
    assert out.exit_code == 2 and "--workdir" in out.output


def test_worker_settings_travel_to_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLI_SETTINGS_ENV, "")
    options = {
        "autoscale": "6,2",
        "include": ("json,csv",),
        "time_limit": 30.0,
        "soft_time_limit": None,
        "max_tasks_per_child": 5,
        "max_memory_per_child": None,
        "exclude_queues": ("a,b",),
        "logfile": None,
        "pidfile": None,
        "detach": False,
        "purge_first": False,
    }
    line = CommandLine.read(options, concurrency=2)
    assert line.concurrency == 6 and line.exclude_queues == ["a", "b"]
    assert line.autoscale == (6, 2)
    app = load_app("tests.celery_worker.findable.proj_celery")
    assert app.conf.task_time_limit == 30.0 and app.conf.worker_max_tasks_per_child == 5
    assert {"json", "csv"} <= set(app.conf.include)


def test_pidfile_of_a_running_process_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "taken.pid"
    taken.write_text(f"{os.getppid()}\n")
    with pytest.raises(click.ClickException, match="is running already"):
        CommandLine([], None, None, str(taken), False, False).start(first=True)
    stale = tmp_path / "stale.pid"
    stale.write_text("999999999\n")
    CommandLine([], None, None, str(stale), False, False).start(first=True)
    assert stale.read_text().strip() == str(os.getpid())


def test_child_recycling_reasons() -> None:
    class Conf:
        worker_max_tasks_per_child = 3
        worker_max_memory_per_child = 1  # KiB: any live process is above it

    assert used_up(Conf, None, 2) is None
    assert "ran 3 tasks" in (used_up(Conf, None, 3) or "")
    assert "KiB" in (used_up(Conf, os.getpid(), 1) or "")
    assert resident_kib(os.getpid()) and resident_kib(999999999) is None


def test_celerys_pool_names() -> None:
    app = load_app("tests.celery_worker.findable.proj_celery")
    app.conf.worker_pool = "prefork"  # a Celery config's value: the processes pool
    with pytest.raises(ConfigurationError, match="process pool needs the app's -A path"):
        Worker(app, concurrency=1)
    app.conf.worker_pool = "gevent"
    with pytest.raises(ConfigurationError, match="no green-thread pools"):
        Worker(app, concurrency=1)
    del app.conf.worker_pool
