"""Celery's settings: one table says, for each, honoured, not needed or refused."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.app import celery_settings, context
from conveyor.app.celery_settings import HONOURED, NOT_NEEDED, REFUSED, RefusedSetting
from conveyor.app.config import DEFAULTS, Settings
from conveyor.app.rate_limit import InvalidRateLimit
from conveyor.core.errors import ConfigurationError
from tests.celery.conftest import fetch_message


def test_every_honoured_setting_has_a_conveyor_default() -> None:
    honoured = {row.name for row in celery_settings.TABLE if row.verdict == HONOURED}
    assert honoured - set(DEFAULTS) == set()


def test_each_row_has_a_verdict_and_a_reason_when_not_honoured() -> None:
    rows = celery_settings.TABLE
    assert len({row.name for row in rows}) == len(rows) > 180
    for row in rows:
        assert row.verdict in (HONOURED, NOT_NEEDED, REFUSED)
        assert row.name.islower()
        assert all(old.isupper() for old in row.old)
        if row.verdict != HONOURED:
            assert row.note, row.name


def test_old_names_map_to_one_setting_each() -> None:
    olds = [old for row in celery_settings.TABLE for old in row.old]
    assert len(olds) == len(set(olds)) > 49


@pytest.mark.parametrize(
    ("old", "new", "value"),
    [
        ("CELERY_ALWAYS_EAGER", "task_always_eager", True),
        ("CELERY_TASK_ALWAYS_EAGER", "task_always_eager", True),
        ("CELERY_EAGER_PROPAGATES_EXCEPTIONS", "task_eager_propagates", True),
        ("CELERY_MESSAGE_COMPRESSION", "task_compression", "zlib"),
        ("CELERYD_TIME_LIMIT", "task_time_limit", 30),
        ("CELERY_TASK_PUBLISH_RETRY", "task_publish_retry", False),
        ("BROKER_URL", "broker_url", "memory://x"),
    ],
)
def test_old_uppercase_names_are_honoured(old: str, new: str, value: object) -> None:
    conf = Settings()
    conf.from_object({old: value})
    assert conf[new] == value


def test_refused_setting_raises_naming_it_and_why() -> None:
    conf = Settings()
    with pytest.raises(RefusedSetting, match=r"broker_use_ssl=True.*amqps://") as caught:
        conf.broker_use_ssl = True
    assert isinstance(caught.value, ConfigurationError)
    with pytest.raises(RefusedSetting, match="result_serializer='pickle'"):
        conf.from_object({"CELERY_RESULT_SERIALIZER": "pickle"})
    assert not conf.is_set("result_serializer")


def test_refused_setting_at_celerys_default_is_harmless() -> None:
    conf = Settings()
    conf.from_object({"result_serializer": "json", "task_queues": None, "broker_use_ssl": False})
    assert conf.result_serializer == "json"


def test_not_needed_setting_is_accepted_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    conf = Settings()
    with caplog.at_level(logging.INFO, logger="conveyor.config"):
        conf.broker_heartbeat = 10
    assert conf.broker_heartbeat == 10
    assert "broker_heartbeat is not needed" in caplog.text


def test_unset_celery_setting_reads_celerys_default() -> None:
    conf = Settings()
    assert conf.broker_pool_limit == 10
    assert conf.worker_hijack_root_logger is True
    with pytest.raises(AttributeError, match="no_such_setting"):
        conf.no_such_setting  # noqa: B018


def test_namespace_reads_only_prefixed_names(app: Conveyor) -> None:
    app.config_from_object("tests.celery.sample_project.settings", namespace="CELERY")
    assert app.conf.task_always_eager is True
    assert app.conf.task_default_queue == "django"
    assert not app.conf.is_set("debug") and not app.conf.is_set("installed_apps")


def test_object_path_with_attribute(app: Conveyor) -> None:
    app.config_from_object("tests.celery.sample_project.settings:Config")
    assert app.conf.task_default_queue == "from-class"
    app.config_from_object("tests.celery.sample_project.settings.Config")
    assert app.conf.task_default_queue == "from-class"


def test_bad_object_paths_name_the_bad_part(app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match="no_such_module"):
        app.config_from_object("tests.celery.no_such_module")
    with pytest.raises(ConfigurationError, match="has no 'Missing'"):
        app.config_from_object("tests.celery.sample_project.settings:Missing")
    app.config_from_object("tests.celery.no_such_module", silent=True)


def test_config_from_envvar(app: Conveyor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJ_CONFIG", "tests.celery.sample_project.settings:Config")
    app.config_from_envvar("PROJ_CONFIG")
    assert app.conf.task_default_queue == "from-class"
    monkeypatch.delenv("PROJ_CONFIG")
    with pytest.raises(ConfigurationError, match="PROJ_CONFIG is not set"):
        app.config_from_envvar("PROJ_CONFIG")
    app.config_from_envvar("PROJ_CONFIG", silent=True)


def test_task_annotations_by_name_pattern_and_object(app: Conveyor) -> None:
    failures: list[str] = []

    def on_failure(self: Any, exc: BaseException, task_id: str, *rest: Any) -> None:
        failures.append(f"{self.name}:{exc}")

    class Slow:
        def annotate(self, task: Any) -> dict[str, Any] | None:
            return {"rate_limit": "1/m"} if task.name.endswith(".slow") else None

    app.conf.task_annotations = [
        {"tests.exact": {"rate_limit": "5/s"}, "tests.*": {"rate_limit": "9/s"}},
        {"tests.*": {"on_failure": on_failure, "rate_limit": "8/s"}},
        Slow(),
    ]

    @app.task(name="tests.exact")
    def exact() -> None:
        raise KeyError("x")

    @app.task(name="other.slow")
    def slow() -> None: ...

    assert exact.rate_limit == "5/s" and slow.rate_limit == "1/m"
    exact.apply()
    assert failures == ["tests.exact:'x'"]


def test_annotations_set_later_apply_when_the_worker_imports(app: Conveyor) -> None:
    @app.task(name="tests.late")
    def late() -> None: ...

    app.conf.task_annotations = {"*": {"rate_limit": "2/s"}}
    assert late.rate_limit is None
    app.import_task_modules()
    assert late.rate_limit == "2/s"
    app.conf.task_annotations = {"*": {"rate_limit": "often"}}
    with pytest.raises(InvalidRateLimit, match="'often'"):
        app.import_task_modules()
    app.conf.task_annotations = [object()]
    with pytest.raises(ConfigurationError, match="annotate"):
        app.import_task_modules()


def test_inherit_parent_priority(app: Conveyor) -> None:
    app.conf.task_inherit_parent_priority = True

    @app.task
    def child() -> None: ...

    @app.task
    def parent() -> None:
        child.delay()

    request = context.Context(id="p", task=parent.name, delivery_info={"priority": 7})
    with context.running(request):
        parent.run()
    assert fetch_message(app).priority == 7
    child.delay()
    assert fetch_message(app).priority == 0
