"""Groups, their GroupResult and ResultSet, and chunks/map/starmap, on an in-process worker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor import GroupResult, ResultSet, group
from conveyor.worker.worker import Worker
from tests.canvas.conftest import Boom, Tasks

StartWorker = Callable[..., Worker]


def test_a_group_of_100_returns_results_in_order(shared: Tasks) -> None:
    result = group(shared.add.s(i, i) for i in range(100)).apply_async()
    assert isinstance(result, GroupResult) and len(result) == 100
    assert result.get(timeout=20) == [2 * i for i in range(100)]
    assert result.ready() and result.successful() and not result.failed()
    assert result.completed_count() == 100
    assert result.join(timeout=1) == result.get()


def test_partial_args_reach_every_member(shared: Tasks) -> None:
    result = group(shared.add.s(1), shared.mul.s(3)).delay(10)
    assert result.get(timeout=10) == [11, 30]


def test_a_failed_member(shared: Tasks) -> None:
    result = group(shared.add.s(1, 1), shared.fail.s(7)).delay()
    with pytest.raises(Boom):
        result.get(timeout=10)
    assert result.ready() and result.failed() and not result.successful()
    assert result.completed_count() == 1
    values = result.get(timeout=1, propagate=False)
    assert values[0] == 2 and isinstance(values[1], Boom)


def test_save_and_restore(shared: Tasks) -> None:
    result = group(shared.add.s(i, 1) for i in range(3)).delay().save()
    restored = GroupResult.restore(result.id, app=shared.app)
    assert restored == result and restored is not None
    assert restored.get(timeout=10) == [1, 2, 3]
    restored.delete()
    assert GroupResult.restore(result.id, app=shared.app) is None


def test_result_set_and_revoke(tasks: Tasks, start_worker: StartWorker) -> None:
    one, two = tasks.add.delay(1, 1), tasks.add.delay(2, 2)
    results = ResultSet([one, two])
    assert not results.ready() and results.waiting()
    results.revoke()  # before a worker runs them
    start_worker()
    assert results.get(timeout=10, propagate=False)[0].__class__.__name__ == "TaskRevokedError"


def test_map_starmap_and_chunks(shared: Tasks) -> None:
    assert shared.tsum.map([[1, 2], [3, 4]]).delay().get(timeout=10) == [3, 7]
    assert shared.add.starmap([(1, 2), (3, 4)]).delay().get(timeout=10) == [3, 7]
    pairs = [(i, i) for i in range(10)]
    chunked = shared.add.chunks(pairs, 3).apply_async()
    assert len(chunked) == 4  # 3 + 3 + 3 + 1 calls
    assert chunked.get(timeout=10) == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]


def test_chunks_refuse_a_bad_size(tasks: Tasks) -> None:
    from conveyor.canvas import InvalidWorkflow

    with pytest.raises(InvalidWorkflow, match="size of 1 or more, not 0"):
        tasks.add.chunks([(1, 1)], 0)
