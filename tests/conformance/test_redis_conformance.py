import pytest

from conveyor.testing.transport_suite import TransportContract


class TestRedisConformance(TransportContract):
    @pytest.fixture
    def broker_url(self, redis_url: str) -> str:
        return redis_url
