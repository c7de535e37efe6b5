"""The app of the logging-settings tests (`-A tests.celery_worker.logging_app`): Celery's
worker_log_format and worker_task_log_format set, broker and backend from
CONVEYOR_BROKER_URL and CONVEYOR_RESULT_BACKEND."""

from conveyor import Conveyor
from conveyor.utils.log import get_task_logger

app = Conveyor("logging_app")
app.conf.update(
    worker_log_format="LOG %(levelname)s %(name)s: %(message)s",
    worker_task_log_format="TASK %(levelname)s %(task_name)s[%(task_id)s]: %(message)s",
)
logger = get_task_logger(__name__)


@app.task
def shout(word: str) -> str:
    print(f"printed {word}")
    logger.info("logged %s", word)
    return word
