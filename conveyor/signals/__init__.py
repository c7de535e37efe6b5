"""Celery's signals, by Celery's names, with the arguments Celery sends (see docs/signals.md).

`from conveyor.signals import task_success`, as `from celery.signals import ...`. Each is
a `conveyor.signals.dispatch.Signal`. Where a signal is sent, and what `sender` is:

- publishing (the app): before_task_publish, after_task_publish (sender: the task name);
- running a task (worker slot or process-pool child): task_prerun, task_postrun,
  task_success, task_failure, task_retry, task_revoked (sender: the task object);
- receiving (the worker's consumer): task_received (sender: the worker), task_rejected and
  task_unknown (sender: the app; the message is dead-lettered with the reason);
- the worker's life: worker_init, worker_ready, worker_shutdown (sender: the worker),
  worker_shutting_down (sender: the hostname); in each process-pool child
  worker_process_init and worker_process_shutdown;
- logging: setup_logging (if anyone is connected, conveyor leaves logging alone, as Celery
  does), after_setup_logger, after_setup_task_logger;
- the app: import_modules (sender: the app), after the `imports`/`include` modules loaded.
"""

from __future__ import annotations

from conveyor.signals.dispatch import Signal

before_task_publish = Signal(
    "before_task_publish",
    ("body", "exchange", "routing_key", "headers", "properties", "declare", "retry_policy"),
)
after_task_publish = Signal("after_task_publish", ("body", "exchange", "routing_key", "headers"))
task_received = Signal("task_received", ("request",))
task_prerun = Signal("task_prerun", ("task_id", "task", "args", "kwargs"))
task_postrun = Signal("task_postrun", ("task_id", "task", "args", "kwargs", "retval", "state"))
task_success = Signal("task_success", ("result",))
task_retry = Signal("task_retry", ("request", "reason", "einfo"))
task_failure = Signal(
    "task_failure", ("task_id", "exception", "args", "kwargs", "traceback", "einfo")
)
task_revoked = Signal("task_revoked", ("request", "terminated", "signum", "expired"))
task_rejected = Signal("task_rejected", ("message", "exc"))
task_unknown = Signal("task_unknown", ("name", "id", "message", "exc"))
worker_init = Signal("worker_init")
worker_ready = Signal("worker_ready")
worker_shutting_down = Signal("worker_shutting_down", ("sig", "how", "exitcode"))
worker_shutdown = Signal("worker_shutdown")
worker_process_init = Signal("worker_process_init")
worker_process_shutdown = Signal("worker_process_shutdown", ("pid", "exitcode"))
setup_logging = Signal("setup_logging", ("loglevel", "logfile", "format", "colorize"))
after_setup_logger = Signal(
    "after_setup_logger", ("logger", "loglevel", "logfile", "format", "colorize")
)
after_setup_task_logger = Signal(
    "after_setup_task_logger", ("logger", "loglevel", "logfile", "format", "colorize")
)
import_modules = Signal("import_modules")

__all__ = [
    "Signal",
    "after_setup_logger",
    "after_setup_task_logger",
    "after_task_publish",
    "before_task_publish",
    "import_modules",
    "setup_logging",
    "task_failure",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_success",
    "task_unknown",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
]
