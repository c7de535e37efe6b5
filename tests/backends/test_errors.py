"""The safe way back from a stored failure to an exception (conveyor.backends.errors)."""

from __future__ import annotations

import sys

import pytest

from conveyor.backends.base import FAILURE, ResultRecord
from conveyor.backends.errors import (
    RemoteError,
    ResultTooLarge,
    describe_exception,
    rebuild_exception,
)


def failure(result: object, traceback: str | None = "tb") -> ResultRecord:
    return ResultRecord("t", FAILURE, result=result, traceback=traceback)


class Refused(Exception):
    pass


class NeedsTwo(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(a, b)


def test_describe_then_rebuild_a_builtin() -> None:
    described = describe_exception(KeyError("missing"))
    assert described == {
        "exc_type": "KeyError",
        "exc_message": "'missing'",
        "exc_module": "builtins",
    }
    rebuilt = rebuild_exception(failure(described))
    assert type(rebuilt) is KeyError


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("builtins", "system"),  # a builtins name outside the allow-list
        ("builtins", "exec"),
        ("builtins", "SystemExit"),  # BaseException subclasses stop a worker: never rebuilt
        ("subprocess", "Popen"),
        ("builtins", "__import__"),
    ],
)
def test_unknown_or_hostile_names_give_a_remote_error(module: str, name: str) -> None:
    record = failure({"exc_type": name, "exc_module": module, "exc_message": "rm -rf /"})
    rebuilt = rebuild_exception(record)
    assert type(rebuilt) is RemoteError
    assert rebuilt.exc_type == (name if module == "builtins" else f"{module}.{name}")
    assert rebuilt.exc_message == "rm -rf /" and rebuilt.remote_traceback == "tb"


def test_no_module_named_by_data_is_imported() -> None:
    name = "antigravity"  # importing it would open a web browser
    assert name not in sys.modules
    rebuild_exception(failure({"exc_type": "Error", "exc_module": name, "exc_message": ""}))
    assert name not in sys.modules


def test_classes_passed_by_code_are_rebuilt() -> None:
    known = {f"{__name__}.Refused": Refused, f"{__name__}.NeedsTwo": NeedsTwo}
    refused = failure(describe_exception(Refused("no")))
    assert type(rebuild_exception(refused, known)) is Refused
    assert type(rebuild_exception(refused)) is RemoteError  # not trusted without `known`
    # A trusted class whose constructor wants other arguments still gives an error object.
    two = failure(describe_exception(NeedsTwo("a", "b")))
    assert type(rebuild_exception(two, known)) is RemoteError


def test_result_too_large_is_rebuilt() -> None:
    record = failure(describe_exception(ResultTooLarge("9 bytes over 8")))
    rebuilt = rebuild_exception(record)
    assert type(rebuilt) is ResultTooLarge and str(rebuilt) == "9 bytes over 8"


@pytest.mark.parametrize("result", [None, "text", ["ValueError"], {"exc_message": None}])
def test_malformed_failures_do_not_crash(result: object) -> None:
    rebuilt = rebuild_exception(failure(result, traceback=None))
    assert isinstance(rebuilt, Exception)
