"""A Celery-style project package: the app lives in proj_celery/celery.py."""
