"""How running one job ended: the one value a pool hands back to settle the job's message.

Exactly one field is set, and the constructor says which:

* `Ended.at(state)`: the task's final state ("SUCCESS", "FAILURE", "REJECTED", ...), its
  record stored already (or nothing to store). The message is acked, or nacked for
  REJECTED and REQUEUED (request.Work.finish).
* `Ended.deferred(stored)`: a success whose record waits to be stored in a batch with
  others (settle.py); `stored.after` runs once it is.
* `Ended.failed(error)`: a result-backend or broker error, or a lost pool child: nothing is
  known to be stored, so the message goes back to the queue.

A state or an error crosses the process pool's pipe as it is (picklable); a deferred store
never does, since children store their own results.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.worker.middleware import Stored


@dataclass(frozen=True)
class Ended:
    state: str | None = None
    stored: Stored | None = None
    error: BaseException | None = None

    @classmethod
    def at(cls, state: str) -> Ended:
        return cls(state=state)

    @classmethod
    def deferred(cls, stored: Stored) -> Ended:
        return cls(stored=stored)

    @classmethod
    def failed(cls, error: BaseException) -> Ended:
        return cls(error=error)
