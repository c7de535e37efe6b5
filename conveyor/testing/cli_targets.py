"""The test classes `conveyor conformance` runs: the suites bound to command-line URLs."""

from __future__ import annotations

import pytest

from conveyor.testing.backend_suite import BackendContract
from conveyor.testing.transport_suite import TransportContract


def _url_option(request: pytest.FixtureRequest, option: str) -> str:
    url = request.config.getoption(option)
    if not url:
        pytest.fail(f"{option} URL is required", pytrace=False)
    return str(url)


class TestTransportConformance(TransportContract):
    @pytest.fixture
    def broker_url(self, request: pytest.FixtureRequest) -> str:
        return _url_option(request, "--conveyor-broker")


class TestBackendConformance(BackendContract):
    @pytest.fixture
    def backend_url(self, request: pytest.FixtureRequest) -> str:
        return _url_option(request, "--conveyor-backend")
