"""A config module written with Celery's lowercase names (read by test_config)."""

broker_url = "memory://sample"
task_serializer = "json"
timezone = "Europe/Paris"
custom_setting = 42
