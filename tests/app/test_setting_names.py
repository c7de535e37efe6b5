"""Misspelled settings are not accepted silently: a warning names the nearest known name,
and strict mode raises (issue 12, defect 8)."""

from __future__ import annotations

import types
import warnings

import pytest

from conveyor import Conveyor
from conveyor.app.setting_names import UnknownSetting
from conveyor.core.errors import ConfigurationError


def test_a_misspelled_setting_warns_with_the_nearest_name() -> None:
    app = Conveyor("names", broker="memory://names", backend="memory://names")
    with pytest.warns(UnknownSetting, match=r"'broker_ur'.*did you mean 'broker_url'"):
        app.conf.update(broker_ur="redis://elsewhere")
    assert app.conf.broker_url == "memory://names", "the real setting is untouched"


def test_a_misspelled_lowercase_name_in_config_from_object_warns() -> None:
    app = Conveyor("names", broker="memory://names", backend="memory://names")
    config = types.SimpleNamespace(task_serialiser="json", result_expires=10)
    with pytest.warns(UnknownSetting, match="did you mean 'task_serializer'"):
        app.config_from_object(config)
    assert app.conf.result_expires == 10


def test_known_names_and_aliases_do_not_warn() -> None:
    app = Conveyor("names", broker="memory://names", backend="memory://names")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.conf.update(task_acks_late=False, CELERY_DEFAULT_QUEUE="q", worker_concurrency=2)


def test_strict_mode_raises_naming_the_setting() -> None:
    app = Conveyor("names", broker="memory://names", backend="memory://names")
    app.conf.strict_settings = True
    with pytest.raises(
        ConfigurationError, match=r"unknown setting 'resutl_backend'.*'result_backend'"
    ):
        app.conf.update(resutl_backend="redis://x")
    with pytest.raises(ConfigurationError, match="unknown setting 'zzz_qqq'"):
        app.conf.zzz_qqq = 1
