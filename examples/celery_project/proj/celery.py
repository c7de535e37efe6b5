"""The app, as Celery's docs write proj/celery.py (only the import is renamed)."""

from conveyor import Conveyor

app = Conveyor("proj")
app.config_from_object("proj.celeryconfig")
app.autodiscover_tasks(["proj"])

# Signal receivers are connected when the app is loaded, in the worker too.
from proj import signals  # noqa: E402,F401
