from __future__ import annotations

import types

import pytest

from conveyor import Conveyor
from conveyor.app.setting_names import UnknownSetting


def test_defaults_are_sqlite_files_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONVEYOR_BROKER_URL", raising=False)
    monkeypatch.delenv("CONVEYOR_RESULT_BACKEND", raising=False)
    conf = Conveyor("x").conf
    assert conf.broker_url == "sqlite:///conveyor.db"
    assert conf.result_backend == "sqlite:///conveyor-results.db"
    assert conf.task_default_queue == "default"
    assert conf.task_acks_late is True
    assert conf["accept_content"] == ["json"]


def test_environment_fills_in_what_code_did_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_BROKER_URL", "memory://env")
    monkeypatch.setenv("CONVEYOR_RESULT_BACKEND", "memory://envres")
    assert Conveyor("x").conf.broker_url == "memory://env"
    assert Conveyor("x").conf.result_backend == "memory://envres"
    explicit = Conveyor("x", broker="memory://code", backend="memory://coderes")
    assert explicit.conf.broker_url == "memory://code"
    assert explicit.conf.result_backend == "memory://coderes"


def test_config_from_object_takes_celery_uppercase_aliases(
    caplog: pytest.LogCaptureFixture,
) -> None:
    module = types.ModuleType("celeryconfig")
    module.BROKER_URL = "memory://old"  # type: ignore[attr-defined]
    module.CELERY_RESULT_BACKEND = "memory://oldres"  # type: ignore[attr-defined]
    module.CELERY_ROUTES = {"a.*": {"queue": "q"}}  # type: ignore[attr-defined]
    module.CELERYBEAT_SCHEDULE = {"every": {"task": "a.b"}}  # type: ignore[attr-defined]
    module.CELERYD_PREFETCH_MULTIPLIER = 1  # type: ignore[attr-defined]
    module.CELERY_NOT_A_THING = 1  # type: ignore[attr-defined]
    module.types = types  # type: ignore[attr-defined]  # modules in a config are not settings
    app = Conveyor("x")
    app.config_from_object(module)
    assert app.conf.broker_url == "memory://old"
    assert app.conf.result_backend == "memory://oldres"
    assert app.conf.task_routes == {"a.*": {"queue": "q"}}
    assert app.conf.beat_schedule == {"every": {"task": "a.b"}}
    assert app.conf.worker_prefetch_multiplier == 1
    assert "types" not in app.conf
    assert "CELERY_NOT_A_THING" in caplog.text


def test_config_from_object_by_module_path_and_lowercase_names() -> None:
    app = Conveyor("x")
    with pytest.warns(UnknownSetting, match="'custom_setting'"):  # kept, with a warning
        app.config_from_object("tests.app.sample_config")
    assert app.conf.broker_url == "memory://sample"
    assert app.conf.task_serializer == "json"
    assert app.conf.timezone == "Europe/Paris"
    assert app.conf.custom_setting == 42


def test_conf_update_and_attribute_access() -> None:
    app = Conveyor("x")
    app.conf.update(result_expires=5, task_default_queue="jobs")
    app.conf.CELERY_ACKS_LATE = False
    assert (app.conf.result_expires, app.conf.task_default_queue) == (5, "jobs")
    assert app.conf.task_acks_late is False
    with pytest.raises(AttributeError):
        app.conf.no_such_setting  # noqa: B018


def test_a_setting_read_then_changed_reads_the_new_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads are kept for speed; every way of changing a setting replaces what was kept."""
    conf = Conveyor("x").conf
    assert conf.task_default_queue == "default"
    conf.task_default_queue = "one"
    assert conf.task_default_queue == "one"
    conf["task_default_queue"] = "two"
    assert conf.task_default_queue == "two"
    conf.update(task_default_queue="three")
    assert conf.task_default_queue == "three"
    conf.from_object({"CELERY_DEFAULT_QUEUE": "four"})
    assert conf.task_default_queue == "four"
    del conf["task_default_queue"]
    assert conf.task_default_queue == "default"
    assert "task_default_queue" in dict(conf)
    monkeypatch.setenv("CONVEYOR_BROKER_URL", "redis://one")
    assert conf.broker_url == "redis://one"
    monkeypatch.setenv("CONVEYOR_BROKER_URL", "redis://two")
    assert conf.broker_url == "redis://two"
