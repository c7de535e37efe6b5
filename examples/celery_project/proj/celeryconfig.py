"""Settings with Celery's names; broker and results from the environment, as deployed."""

import os

broker_url = os.environ.get("PROJ_BROKER_URL", "sqlite:///proj-broker.db")
result_backend = os.environ.get("PROJ_RESULT_BACKEND", "sqlite:///proj-results.db")
task_serializer = "json"
accept_content = ["json"]
timezone = "Europe/Berlin"
task_acks_late = True
task_track_started = True
worker_prefetch_multiplier = 1
task_default_queue = "default"
task_routes = {"proj.tasks.send_report": {"queue": "reports"}}
