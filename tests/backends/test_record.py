"""ResultRecord encoding: the fields as JSON, dataclasses in a result as dicts."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from conveyor.backends.base import ResultRecord
from conveyor.core.errors import EncodeError


@dataclass
class Point:
    x: int
    inner: list[Point]


def test_a_record_round_trips_and_dataclasses_in_the_result_become_dicts() -> None:
    record = ResultRecord("t", "SUCCESS", result={"p": Point(1, [Point(2, [])])}, date_done=1.5)
    data = record.to_bytes()
    assert json.loads(data)["result"] == {"p": {"x": 1, "inner": [{"x": 2, "inner": []}]}}
    assert ResultRecord.from_bytes(data) == ResultRecord(
        "t", "SUCCESS", result={"p": {"x": 1, "inner": [{"x": 2, "inner": []}]}}, date_done=1.5
    )


@pytest.mark.parametrize("value", [object(), Point, {1j: 1}])
def test_what_json_cannot_hold_is_an_encode_error(value: object) -> None:
    with pytest.raises(EncodeError, match="is not JSON"):
        ResultRecord("t", "SUCCESS", result=value).to_bytes()


def test_a_circular_result_is_an_encode_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(EncodeError):
        ResultRecord("t", "SUCCESS", result=loop).to_bytes()
