"""The app of the worker start-up tests (test_siblings.py, test_import_discipline.py).

The broker and backend come from CONVEYOR_BROKER_URL / CONVEYOR_RESULT_BACKEND; what it
does besides defining `add` is chosen by the test through the environment:

* STARTUP_IMPORTS=path: append this process's pid to `path` when the module is imported
  (a forked sibling does not import it again, a spawned one does);
* STARTUP_THREAD=1: start a thread at import, as an app module that starts a client
  library's background thread would (siblings must then be spawned, not forked);
* STARTUP_GATE=fifo: a sibling's worker_init opens the FIFO for reading, so it stays short
  of consuming until the test opens the FIFO for writing;
* STARTUP_MODULES=path: at worker_ready, write the names in sys.modules to `path.<pid>`.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from conveyor import Conveyor, signals
from conveyor.worker.siblings import is_sibling

app = Conveyor("startup")

if os.environ.get("STARTUP_IMPORTS"):
    with open(os.environ["STARTUP_IMPORTS"], "a") as imports:
        imports.write(f"{os.getpid()}\n")

if os.environ.get("STARTUP_THREAD"):
    threading.Thread(target=threading.Event().wait, name="app-background", daemon=True).start()


@app.task(name="startup.add")
def add(x: int, y: int) -> int:
    return x + y


@signals.worker_init.connect
def _hold_a_sibling(sender: Any = None, **_: Any) -> None:
    gate = os.environ.get("STARTUP_GATE")
    if gate and is_sibling():
        with open(gate, "rb"):  # blocks until the test opens the FIFO for writing
            pass


@signals.worker_ready.connect
def _write_modules(sender: Any = None, **_: Any) -> None:
    path = os.environ.get("STARTUP_MODULES")
    if path:
        with open(f"{path}.{os.getpid()}", "w") as out:
            out.write("\n".join(sorted(sys.modules)))
