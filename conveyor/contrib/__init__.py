"""Helpers for users' own code and tests, at Celery's import paths (`celery.contrib`)."""
