"""conveyor with its events off (`worker_send_task_events` and `task_send_sent_event`
False), beside conveyor with its defaults (events on), to show what events cost."""

from __future__ import annotations

from benchmarks.tasks.systems import conveyor_app
from benchmarks.tasks.systems.conveyor_app import add, app

__all__ = ["add", "app", "client"]

app.conf.worker_send_task_events = False
app.conf.task_send_sent_event = False


class Client(conveyor_app.Client):
    name = "conveyor_noevents"


def client() -> Client:
    return Client()
