"""The result-backend conformance suite (B1-B12): each built-in backend against a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.testing.backend_suite import BackendContract


class TestMemoryBackendConformance(BackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def backend_url(cls) -> str:
        return "memory://conformance"


class TestRedisBackendConformance(BackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def backend_url(cls, redis_url: str) -> str:
        return redis_url


class TestMemcachedBackendConformance(BackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def backend_url(cls, memcached_url: str) -> str:
        return memcached_url


class TestSQLiteBackendConformance(BackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def backend_url(cls, tmp_path_factory: pytest.TempPathFactory) -> str:
        path: Path = tmp_path_factory.mktemp("sqlite-backend") / "results.db"
        return f"sqlite:///{path}"


class TestPostgreSQLBackendConformance(BackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def backend_url(cls, postgres_url: str) -> str:
        return postgres_url


class TestMariaDBBackendConformance(BackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def backend_url(cls, mysql_url: str) -> str:
        return mysql_url
