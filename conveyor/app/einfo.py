"""ExceptionInfo: the `einfo` that on_failure, on_retry and after_return receive, in the
worker and in eager runs alike (Celery's shape: `exception`, `traceback`, `type`)."""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass


@dataclass
class ExceptionInfo:
    exception: BaseException
    traceback: str

    @classmethod
    def of(cls, exc: BaseException) -> ExceptionInfo:
        """The info of `exc` with its formatted traceback."""
        return cls(exc, "".join(tb.format_exception(type(exc), exc, exc.__traceback__)))

    @property
    def type(self) -> type[BaseException]:
        return type(self.exception)
