"""Task-queue benchmark: conveyor beside Celery, Dramatiq and Huey (see benchmarks/README.md)."""
