"""Tasks with the options a Celery project uses."""

import time

from conveyor import shared_task
from conveyor.exceptions import Ignore
from conveyor.utils.log import get_task_logger
from proj.celery import app

logger = get_task_logger(__name__)


@app.task(rate_limit="50/s", typing=True)
def add(x, y):
    logger.info("adding %s and %s", x, y)
    return x + y


@shared_task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=0.05, max_retries=3)
def fetch(self, url, fail_times=0):
    """Fails with ConnectionError `fail_times` times, then succeeds (autoretry)."""
    if self.request.retries < fail_times:
        raise ConnectionError(f"{url} unreachable")
    return {"url": url, "attempts": self.request.retries + 1}


@app.task(time_limit=30, soft_time_limit=20, acks_late=True, reject_on_worker_lost=True)
def slow(seconds):
    time.sleep(seconds)
    return seconds


@app.task(ignore_result=True)
def log_event(name):
    logger.info("event %s", name)


@app.task(bind=True, max_retries=0)
def skip_me(self):
    raise Ignore()


@app.task
def send_report(recipient):
    return f"report sent to {recipient}"


@app.task(throws=(KeyError,))
def lookup(table, key):
    return table[key]
