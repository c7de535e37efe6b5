import pytest

from conveyor.testing.transport_suite import TransportContract


class TestMemoryConformance(TransportContract):
    @pytest.fixture
    def broker_url(self) -> str:
        return "memory://conformance"
