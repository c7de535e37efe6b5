"""The worker's Celery command-line options and the global ones, short of running a worker."""

from __future__ import annotations

import json
import os

import click
import pytest
from click.testing import CliRunner

from conveyor.app.loader import CLI_SETTINGS_ENV, load_app
from conveyor.cli import main
from conveyor.cli.worker_options import expand_hostname, parse_autoscale
from conveyor.core.errors import ConfigurationError


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
