"""Signal receivers, as a Celery project connects them."""

import logging

from conveyor.signals import task_failure, task_postrun, task_prerun, worker_ready

log = logging.getLogger("proj.signals")
#: What the receivers saw, in this process (the eager tests read it).
SEEN = []


@task_prerun.connect
def on_prerun(sender=None, task_id=None, task=None, args=None, kwargs=None, **extra):
    SEEN.append(("prerun", task.name))
    log.warning("prerun %s[%s]", task.name, task_id)


@task_postrun.connect
def on_postrun(sender=None, task_id=None, task=None, retval=None, state=None, **extra):
    SEEN.append(("postrun", task.name, state))
    log.warning("postrun %s[%s] %s", task.name, task_id, state)


@task_failure.connect(sender="proj.tasks.lookup")
def on_lookup_failure(sender=None, task_id=None, exception=None, **extra):
    SEEN.append(("failure", sender.name, type(exception).__name__))
    log.warning("lookup failed: %r", exception)


@worker_ready.connect
def on_ready(sender=None, **extra):
    log.warning("worker ready: %s", sender.hostname)
