"""The app of the control CLI tests (`-A tests.celery_worker.control_app`)."""

from conveyor import Conveyor

app = Conveyor("control_app", broker="memory://control-cli", backend="memory://control-cli")


@app.task
def echo(value: object) -> object:
    return value
