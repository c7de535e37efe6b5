"""Ended, the one value a pool hands back for settling: what crosses the process pipe."""

from __future__ import annotations

import pickle

from conveyor.app import states
from conveyor.backends.base import ResultRecord
from conveyor.worker.ended import Ended
from conveyor.worker.middleware import Stored
from conveyor.worker.processes import ChildLost


def test_each_constructor_sets_one_field() -> None:
    stored = Stored(ResultRecord("id", states.SUCCESS), lambda: states.SUCCESS)
    assert Ended.at(states.SUCCESS) == Ended(state=states.SUCCESS)
    assert Ended.deferred(stored) == Ended(stored=stored)
    lost = ChildLost("gone")
    assert Ended.failed(lost) == Ended(error=lost)


def test_a_state_and_an_error_cross_the_process_pipe() -> None:
    assert pickle.loads(pickle.dumps(Ended.at(states.FAILURE))) == Ended.at(states.FAILURE)
    error = pickle.loads(pickle.dumps(Ended.failed(ChildLost("exit code 1")))).error
    assert isinstance(error, ChildLost) and str(error) == "exit code 1"
