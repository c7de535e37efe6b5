"""conveyor's transport conformance suite, bound to a spool in a temporary directory.

This is all a plugin needs to prove itself: subclass TransportContract and say which URL
to test. `conveyor conformance --broker spool:///tmp/spool` runs the same clauses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.testing.transport_suite import TransportContract


class TestSpoolConformance(TransportContract):
    @pytest.fixture
    def broker_url(self, tmp_path: Path) -> str:
        return f"spool://{tmp_path / 'spool'}"
