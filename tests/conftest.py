"""Shared fixtures: a fresh PostgreSQL database per test session and the test Redis URL.

Area-specific fixtures (Redis Cluster, moto_server, HTTP test servers) live in
the conftest.py of their own test folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.services import (
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    tcp_reachable,
    unavailable,
    unique_name,
)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The admin URL of the test PostgreSQL server (skips/fails when down)."""
    problem = tcp_reachable(TEST_DATABASE_URL, 5432)
    if problem:
        unavailable(f"PostgreSQL at ADS_TEST_DATABASE_URL: {problem}")
    return TEST_DATABASE_URL


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A SQLAlchemy URL of a brand-new, empty database, dropped after the test.

    A database per test keeps tests independent of each other and of other
    suites sharing the server; creating one from template0 takes ~50 ms.
    """
    name = unique_name("ads_test")
    admin = await asyncpg.connect(_asyncpg_dsn(postgres_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    url = make_url(postgres_server_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    admin = await asyncpg.connect(_asyncpg_dsn(postgres_server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/test.db"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's test Redis (database 15). Tests use a unique namespace in it."""
    problem = tcp_reachable(TEST_REDIS_URL, 6379)
    if problem:
        unavailable(f"Redis at ADS_TEST_REDIS_URL: {problem}")
    return TEST_REDIS_URL


@pytest.fixture
def namespace() -> Iterator[str]:
    """A key prefix no other test uses."""
    yield unique_name("t")
