"""The test classes `conveyor conformance` runs: the suites bound to command-line URLs."""

from __future__ import annotations

import pytest

from conveyor.testing.transport_suite import TransportContract


class TestTransportConformance(TransportContract):
    @pytest.fixture
    def broker_url(self, request: pytest.FixtureRequest) -> str:
        url = request.config.getoption("--conveyor-broker")
        if not url:
            pytest.skip("no --conveyor-broker given")
        return str(url)
