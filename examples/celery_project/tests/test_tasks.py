"""The project's tests: eager mode, then an in-process worker from the pytest fixtures."""

import pytest
from proj import signals
from proj.tasks import add, fetch, lookup, send_report

from conveyor import states
from conveyor.exceptions import Retry


def test_add_eagerly(eager):
    result = add.delay(2, 3)
    assert result.get() == 5 and result.successful()
    assert ("postrun", "proj.tasks.add", states.SUCCESS) in signals.SEEN


def test_typing_checks_arguments_when_called(eager):
    with pytest.raises(TypeError):
        add.delay(1)


def test_apply_runs_here(eager):
    assert send_report.apply(("ops@example.com",)).get() == "report sent to ops@example.com"


def test_eager_errors_propagate_and_failure_signal_fires(eager):
    with pytest.raises(KeyError):
        lookup.delay({}, "missing")
    assert ("failure", "proj.tasks.lookup", "KeyError") in signals.SEEN


def test_autoretry_eagerly(eager):
    with pytest.raises((ConnectionError, Retry)):
        fetch.delay("http://x", fail_times=10).get()


def test_with_a_worker(conveyor_app, conveyor_worker):
    @conveyor_app.task
    def mul(x, y):
        return x * y

    conveyor_worker.reload()
    assert mul.delay(4, 4).get(timeout=10) == 16
    # shared tasks are tasks of every app, this one too
    assert conveyor_app.tasks["proj.tasks.fetch"].delay("http://y", 1).get(timeout=10) == {
        "url": "http://y",
        "attempts": 2,
    }


@pytest.mark.conveyor(task_always_eager=True)
def test_marker_sets_the_apps_settings(conveyor_app):
    assert conveyor_app.conf.task_always_eager is True
