"""The transport conformance suite against RabbitMQ: classic queues, then quorum queues."""

import pytest

from conveyor.testing.transport_suite import TransportContract


class TestAMQPConformance(TransportContract):
    @pytest.fixture
    def broker_url(self, amqp_url: str) -> str:
        return amqp_url


class TestAMQPQuorumConformance(TransportContract):
    @pytest.fixture
    def broker_url(self, amqp_url: str) -> str:
        separator = "&" if "?" in amqp_url else "?"
        return f"{amqp_url}{separator}queue_type=quorum"
