"""The transport conformance suite against ZooKeeper: open ACLs, then digest credentials.

The authenticated run uses a fresh root path that its user creates with a digest ACL, so
T22's wrong password meets a node that refuses it (ZooKeeper itself never refuses digest
credentials at connect time).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from conveyor.core.url import parse_url
from conveyor.testing.transport_suite import TransportContract


class TestZooKeeperConformance(TransportContract):
    @pytest.fixture(scope="class")
    @classmethod
    def broker_url(cls, zookeeper_url: str) -> str:
        return zookeeper_url


class TestZooKeeperDigestConformance(TransportContract):
    @pytest.fixture(scope="class")
    @classmethod
    def broker_url(cls, zookeeper_url: str) -> Iterator[str]:
        hosts = ",".join(str(h) for h in parse_url(zookeeper_url).hosts)
        root = f"/conveyor-digest-{uuid.uuid4().hex[:8]}"
        yield f"zookeeper://conveyor:s3cret@{hosts}{root}"
        client = KazooClient(hosts, auth_data=[("digest", "conveyor:s3cret")])
        client.start(timeout=10)
        try:
            client.delete(root, recursive=True)
        finally:
            client.stop()
            client.close()
