"""A Celery project ported by renaming the import (``celery`` -> ``conveyor``).

As in Celery's "First steps with Django" layout, the package exposes its app so that
``@shared_task`` tasks bind to it as soon as the package is imported.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
