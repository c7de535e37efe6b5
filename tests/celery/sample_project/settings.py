"""A Django-style settings module: only the CELERY_ names are the task queue's."""

DEBUG = True
INSTALLED_APPS = ["tests.celery.sample_project.pkg_a", "tests.celery.sample_project.pkg_b"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_DEFAULT_QUEUE = "django"


class Config:
    task_default_queue = "from-class"
