"""Errors of the result backends, and the safe way back from a stored failure to an exception.

A FAILURE record carries the exception as text: ``{"exc_type", "exc_message", "exc_module"}``
plus the traceback. `rebuild_exception` turns that into an exception object without ever
importing a module or looking up a name that the stored data chose: only a fixed allow-list
of built-in exception classes (and classes the calling code passes in) are rebuilt; anything
else becomes a `RemoteError` that keeps the type name, message and traceback as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.core.errors import BackendError, ConveyorError, MessageTooLarge

if TYPE_CHECKING:
    from conveyor.backends.base import ResultRecord


class ResultTooLarge(BackendError, MessageTooLarge):
    """A result over the store's size limit. A ready result is stored as a FAILURE saying so."""


class RemoteError(ConveyorError):
    """A task failed with an exception that is not rebuilt here; its description is kept.

    `exc_type` is the dotted name as stored (``module.Name``), never resolved.
    """

    def __init__(self, exc_type: str, exc_message: str, remote_traceback: str | None = None):
        super().__init__(f"{exc_type}: {exc_message}" if exc_message else exc_type)
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.remote_traceback = remote_traceback


# Built-in exceptions whose constructor takes any message and has no side effect. The names
# are looked up in this table, never with getattr on a module.
SAFE_BUILTINS: Mapping[str, type[BaseException]] = {
    cls.__name__: cls
    for cls in (
        Exception,
        ArithmeticError,
        AssertionError,
        AttributeError,
        BufferError,
        ConnectionError,
        EOFError,
        FileExistsError,
        FileNotFoundError,
        FloatingPointError,
        IndexError,
        KeyError,
        LookupError,
        MemoryError,
        NameError,
        NotImplementedError,
        OSError,
        OverflowError,
        PermissionError,
        RecursionError,
        RuntimeError,
        TimeoutError,
        TypeError,
        UnicodeError,
        ValueError,
        ZeroDivisionError,
    )
}


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """The stored form of `exc`: what a FAILURE record's `result` holds."""
    cls = type(exc)
    return {"exc_type": cls.__qualname__, "exc_message": str(exc), "exc_module": cls.__module__}


def rebuild_exception(
    record: ResultRecord, known: Mapping[str, type[BaseException]] | None = None
) -> BaseException:
    """The exception a FAILURE record describes, rebuilt only if its class is known.

    `known` maps dotted names (``"myapp.errors.Refused"``) to classes the caller trusts; it
    comes from code, never from stored data. Everything else gives a `RemoteError`.
    """
    info = record.result if isinstance(record.result, dict) else {}
    exc_type = str(info.get("exc_type") or "Exception")
    exc_module = str(info.get("exc_module") or "builtins")
    message = info.get("exc_message")
    message = "" if message is None else str(message)
    dotted = exc_type if exc_module == "builtins" else f"{exc_module}.{exc_type}"
    cls = (known or {}).get(dotted)
    if cls is None and exc_module == "builtins":
        cls = SAFE_BUILTINS.get(exc_type)
    if cls is None and dotted == f"{__name__}.ResultTooLarge":
        cls = ResultTooLarge
    if cls is None:
        return RemoteError(dotted, message, record.traceback)
    try:
        return cls(message)
    except Exception:  # a trusted class whose constructor wants other arguments
        return RemoteError(dotted, message, record.traceback)
