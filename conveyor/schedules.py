"""The schedules, under the path Celery code imports them from (``celery.schedules``):
``from conveyor.schedules import crontab, solar, schedule``. Needs the `beat` extra."""

from conveyor.beat.crontab import crontab
from conveyor.beat.schedules import Schedule, schedule
from conveyor.beat.solar import solar

__all__ = ["Schedule", "crontab", "schedule", "solar"]
