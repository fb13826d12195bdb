"""Shared fixtures: fresh PostgreSQL databases (empty or migrated), SQLite files, the test Redis.

Area-specific fixtures (Redis Cluster, moto_server, HTTP test servers) live in
the conftest.py of their own test folder.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.pg_fixtures import pgbouncer, replicated, tls_cluster  # noqa: F401  (fixtures)
from tests.redis_server import private_redis  # noqa: F401  (fixture)
from tests.s3 import moto_endpoint, s3_bucket, s3_client  # noqa: F401  (fixtures)
from tests.services import (
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    tcp_reachable,
    unavailable,
    unique_name,
)

pytest_plugins = ["pytester"]  # tests of the pytest plugin run pytest in a subprocess


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The admin URL of the test PostgreSQL server (skips/fails when down)."""
    problem = tcp_reachable(TEST_DATABASE_URL, 5432)
    if problem:
        unavailable(f"PostgreSQL at ADS_TEST_DATABASE_URL: {problem}")
    return TEST_DATABASE_URL


def _run_in_thread(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on a private loop in a thread: works whether or not a loop is running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _admin(server_url: str, statement: str) -> None:
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A SQLAlchemy URL of a brand-new, empty database, dropped after the test.

    A database per test keeps tests independent of each other and of other
    suites sharing the server. The fixture is synchronous so that sync and
    async fixtures alike can depend on it (also via ``request.getfixturevalue``).
    """
    name = unique_name("ads_test")
    _run_in_thread(_admin(postgres_server_url, f'CREATE DATABASE "{name}" TEMPLATE template0'))
    url = make_url(postgres_server_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    _run_in_thread(_admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/test.db"


async def _migrate(url: str) -> None:
    from ads_infra.config import DatabaseConfig
    from ads_infra.database import DatabaseManager, migrate

    db = DatabaseManager(DatabaseConfig(url=url, pool_size=1, max_overflow=0))
    try:
        await migrate.upgrade(db)
    finally:
        await db.close()


@pytest.fixture(scope="session")
def migrated_template(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated once per session, cloned by :func:`migrated_postgres_url`."""
    name = unique_name("ads_tmpl")
    _run_in_thread(_admin(postgres_server_url, f'CREATE DATABASE "{name}" TEMPLATE template0'))
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    try:
        _run_in_thread(_migrate(url))
        yield name
    finally:
        _run_in_thread(
            _admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )


@pytest.fixture
def migrated_postgres_url(postgres_server_url: str, migrated_template: str) -> Iterator[str]:
    """A SQLAlchemy URL of a new database holding the migrated schema, dropped after the test.

    Cloned from the session's migrated template: a file copy on the server,
    where migrating every test's database from scratch ran Alembic each time.
    """
    name = unique_name("ads_test")
    _run_in_thread(
        _admin(postgres_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    )
    url = make_url(postgres_server_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    _run_in_thread(_admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session, copied by :func:`migrated_sqlite_url`."""
    path = tmp_path_factory.mktemp("sqlite-template") / "migrated.db"
    _run_in_thread(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def migrated_sqlite_url(migrated_sqlite_file: Path, tmp_path: Path) -> str:
    """A SQLite URL of this test's own copy of the migrated file."""
    target = tmp_path / "migrated.db"
    shutil.copyfile(migrated_sqlite_file, target)
    return f"sqlite+aiosqlite:///{target}"


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
