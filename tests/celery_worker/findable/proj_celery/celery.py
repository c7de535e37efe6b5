from conveyor import Conveyor

app = Conveyor("proj_celery", broker="memory://find-celery", backend="memory://find-celery")
