"""docs/celery.md says what the code does: its settings section is the settings table, and
every Celery option conveyor maps is on the page."""

from __future__ import annotations

from pathlib import Path

from conveyor.app.call_options import CALL_OPTIONS
from conveyor.app.celery_settings import markdown_table

PAGE = Path(__file__).parents[2] / "docs" / "celery.md"


def test_settings_section_is_the_table() -> None:
    text = PAGE.read_text()
    assert text.endswith(markdown_table()), (
        "docs/celery.md is out of date: regenerate its settings section with "
        "conveyor.app.celery_settings.markdown_table()"
    )


def test_every_call_option_is_documented() -> None:
    text = PAGE.read_text()
    assert [name for name in sorted(CALL_OPTIONS) if f"`{name}`" not in text] == []
