"""The transport conformance suite on SQLite (a temporary file), PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from conveyor.testing.transport_suite import TransportContract


class TestSQLiteConformance(TransportContract):
    @pytest.fixture(scope="class")
    @classmethod
    def broker_url(cls, tmp_path_factory: pytest.TempPathFactory) -> str:
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'conveyor.db'}"


class TestPostgreSQLConformance(TransportContract):
    @pytest.fixture
    def broker_url(self, postgres_url: str) -> str:
        return postgres_url


class TestMariaDBConformance(TransportContract):
    @pytest.fixture
    def broker_url(self, mysql_url: str) -> str:
        return mysql_url
