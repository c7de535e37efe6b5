"""The schedule-store contract suite (L1-L9) against every store, on the real servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.testing.lease_suite import LeaseContract


class TestMemoryLeaseStore(LeaseContract):
    @pytest.fixture(scope="class")
    @classmethod
    def store_url(cls) -> str:
        return "memory://lease-suite"


class TestSQLiteLeaseStore(LeaseContract):
    @pytest.fixture(scope="class")
    @classmethod
    def store_url(cls, tmp_path_factory: pytest.TempPathFactory) -> str:
        path: Path = tmp_path_factory.mktemp("lease") / "beat.db"
        return f"sqlite:///{path}"


class TestRedisLeaseStore(LeaseContract):
    @pytest.fixture(scope="class")
    @classmethod
    def store_url(cls, redis_url: str) -> str:
        return redis_url


class TestPostgreSQLLeaseStore(LeaseContract):
    @pytest.fixture(scope="class")
    @classmethod
    def store_url(cls, postgres_url: str) -> str:
        return postgres_url


class TestMariaDBLeaseStore(LeaseContract):
    @pytest.fixture(scope="class")
    @classmethod
    def store_url(cls, mysql_url: str) -> str:
        return mysql_url


class TestZooKeeperLeaseStore(LeaseContract):
    @pytest.fixture(scope="class")
    @classmethod
    def store_url(cls, zookeeper_url: str) -> str:
        return zookeeper_url


class TestMemcachedLeaseStore(LeaseContract):
    @pytest.fixture(scope="class")
    @classmethod
    def store_url(cls, memcached_url: str) -> str:
        return memcached_url
