from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from conveyor import Conveyor


@pytest.fixture
def app() -> Iterator[Conveyor]:
    """An app on a private in-process broker and result store."""
    name = uuid.uuid4().hex
    application = Conveyor("tests", broker=f"memory://{name}", backend=f"memory://{name}")
    yield application
    application.close()
