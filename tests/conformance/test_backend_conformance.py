"""The result-backend conformance suite (B1-B12): each built-in backend against a real store."""

from __future__ import annotations

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
