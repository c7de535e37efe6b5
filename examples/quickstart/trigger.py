"""Send the quickstart tasks to the worker and show what comes back."""

from __future__ import annotations

import sys
from typing import Any

from tasks import add, crunch, divide, whoami

from conveyor.app.exceptions import TaskError


def show_progress(body: dict[str, Any]) -> None:
    if body["status"] == "PROGRESS":
        done, total = body["result"]["done"], body["result"]["total"]
        bar = "#" * (30 * done // total)
        sys.stdout.write(f"\r  crunch [{bar:<30}] {done}/{total}")
        sys.stdout.flush()


def main() -> None:
    result = add.delay(4, 4)
    print(f"add(4, 4)      -> {result.get(timeout=30)}   (id {result.id})")
    print(f"divide(1, 4)   -> {divide.delay(1, 4).get(timeout=30)}")
    try:
        divide.delay(1, 0).get(timeout=30)
    except ZeroDivisionError as exc:
        print(f"divide(1, 0)   -> raised {type(exc).__name__}: {exc}")
    except TaskError as exc:
        print(f"divide(1, 0)   -> raised {exc!r}")
    print(f"whoami()       -> {whoami.delay().get(timeout=30)}")
    later = add.apply_async((2, 3), countdown=1)
    print(f"add(2, 3) in 1 s -> {later.get(timeout=30)}")
    outcome = crunch.delay(20).get(timeout=60, on_message=show_progress, propagate=False)
    print(f"\ncrunch(20)     -> {outcome}")


if __name__ == "__main__":
    main()
