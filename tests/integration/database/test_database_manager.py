"""DatabaseManager against real SQLite and PostgreSQL: transactions, retries, pool stats."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager
from ads_infra.errors import (
    DatabaseError,
    IntegrityViolationError,
    PermanentDatabaseError,
    TransientDatabaseError,
)
from tests.integration.database.conftest import count_notes


async def test_session_commits_on_success(db: DatabaseManager) -> None:
    async with db.get_session() as session:
        await session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'a')"))
    assert await count_notes(db) == 1


async def test_session_rolls_back_on_error(db: DatabaseManager) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.get_session() as session:
            await session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'a')"))
            raise RuntimeError("boom")
    assert await count_notes(db) == 0


async def test_a_failed_unit_leaves_no_row(db: DatabaseManager) -> None:
    async def unit(session: AsyncSession) -> None:
        await session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'a')"))
        await session.execute(text("INSERT INTO notes (id, body) VALUES (2, 'a')"))  # duplicate

    with pytest.raises(IntegrityViolationError):
        await db.run(unit)
    assert await count_notes(db) == 0


async def test_integrity_error_is_never_retried(db: DatabaseManager) -> None:
    async with db.get_session() as session:
        await session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'a')"))
    calls = 0

    async def unit(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await session.execute(text("INSERT INTO notes (id, body) VALUES (2, 'a')"))

    with pytest.raises(IntegrityViolationError, match="constraint") as info:
        await db.run(unit)
    assert calls == 1
    assert db.retries == 0
    assert isinstance(info.value, PermanentDatabaseError)
    assert info.value.__cause__ is not None


async def test_programming_error_is_never_retried(db: DatabaseManager) -> None:
    calls = 0

    async def unit(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(PermanentDatabaseError):
        await db.run(unit)
    assert calls == 1


async def test_run_returns_the_unit_result(db: DatabaseManager) -> None:
    async def unit(session: AsyncSession) -> int:
        await session.execute(text("INSERT INTO notes (id, body) VALUES (7, 'x')"))
        return 7

    assert await db.run(unit) == 7
    assert await count_notes(db) == 1


async def test_pool_stats_move_with_checkouts(db: DatabaseManager) -> None:
    before = await db.get_pool_stats()
    assert before["active_connections"] == 0
    assert before["pool_size"] == 3
    async with db.engine.connect() as first, db.engine.connect() as second:
        await first.execute(text("SELECT 1"))
        await second.execute(text("SELECT 1"))
        during = await db.get_pool_stats()
        assert during["active_connections"] == during["checked_out"] == 2
    after = await db.get_pool_stats()
    assert after["active_connections"] == 0
    assert after["checked_in"] >= 2
    assert after["backend"] == db.backend


async def test_pool_overflow_is_reported(db: DatabaseManager) -> None:
    connections = [await db.engine.connect() for _ in range(4)]  # pool_size 3 + 1 overflow
    try:
        for conn in connections:
            await conn.execute(text("SELECT 1"))
        stats = await db.get_pool_stats()
        assert stats["checked_out"] == 4
        assert stats["overflow"] == 1
    finally:
        for conn in connections:
            await conn.close()


async def test_health_check_reports_healthy(db: DatabaseManager) -> None:
    status = await db.health_check()
    assert status.healthy
    assert status.backend == db.backend
    assert status.latency_ms is not None and status.latency_ms >= 0


# --- PostgreSQL only: a backend killed mid-unit ---------------------------------------


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _terminate(url: str, pid: int) -> None:
    admin = await asyncpg.connect(_dsn(url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_unit_is_retried_after_backend_is_terminated(postgres_url: str) -> None:
    db = DatabaseManager(DatabaseConfig(url=postgres_url, retry_delay=0.01, retry_max_delay=0.05))
    try:
        async with db.get_session() as session:
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        attempts: list[int] = []

        async def unit(session: AsyncSession) -> None:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            attempts.append(pid)
            await session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'kept')"))
            if len(attempts) == 1:
                await _terminate(postgres_url, pid)
            await session.execute(text("INSERT INTO notes (id, body) VALUES (2, 'kept')"))

        await db.run(unit)
        assert len(attempts) == 2
        assert attempts[0] != attempts[1]  # the retry ran on a new connection
        assert db.retries == 1
        assert await count_notes(db) == 2  # the unit ran whole, exactly once in effect
    finally:
        await db.close()


async def test_pooled_connections_killed_between_units_are_replaced(postgres_url: str) -> None:
    db = DatabaseManager(DatabaseConfig(url=postgres_url, retry_delay=0.01))
    try:
        async with db.get_session() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _terminate(postgres_url, pid)
        await asyncio.sleep(0.05)

        async def unit(session: AsyncSession) -> Any:
            return (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()

        assert await db.run(unit) != pid  # the dead connection was replaced, not reused
    finally:
        await db.close()


async def test_retries_are_capped_and_end_in_a_transient_error() -> None:
    db = DatabaseManager(
        DatabaseConfig(
            url="postgresql+asyncpg://ads:hunter2@127.0.0.1:1/closed",
            max_retries=2,
            retry_delay=0.01,
            retry_max_delay=0.02,
            pool_timeout=2,
        )
    )
    calls = 0

    async def unit(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await session.execute(text("SELECT 1"))

    try:
        with pytest.raises(TransientDatabaseError, match="after 3 attempts") as info:
            await db.run(unit)
    finally:
        await db.close()
    assert calls == 3
    assert db.retries == 2 and db.failures == 1
    assert "hunter2" not in str(info.value)
    health = await db.health_check()
    assert not health.healthy and "hunter2" not in health.detail + health.target
    await db.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_start_fails_fast_with_a_clear_error(backend: str, tmp_path: object) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/../../x.db"
        if backend == "sqlite"
        else "postgresql+asyncpg://postgres@127.0.0.1:1/closed"
    )
    db = DatabaseManager(DatabaseConfig(url=url, pool_timeout=2))
    try:
        if backend == "sqlite":
            await db.start()  # the folder is created on demand
        else:
            with pytest.raises(DatabaseError, match="unavailable"):
                await db.start()
    finally:
        await db.close()


# --- SQLite specifics -------------------------------------------------------------------


async def test_sqlite_has_foreign_keys_and_wal(tmp_path: object) -> None:
    db = DatabaseManager(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path}/fk.db"))
    try:
        async with db.get_session() as session:
            fk = (await session.execute(text("PRAGMA foreign_keys"))).scalar_one()
            mode = (await session.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert (fk, mode) == (1, "wal")
        async with db.get_session() as session:
            await session.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY)"))
            await session.execute(
                text("CREATE TABLE c (id INTEGER, p_id INTEGER REFERENCES p(id))")
            )
        with pytest.raises(IntegrityViolationError):
            async with db.get_session() as session:
                await session.execute(text("INSERT INTO c VALUES (1, 99)"))
    finally:
        await db.close()


async def test_sqlite_connects_while_another_process_writes_to_a_new_file(
    tmp_path: object,
) -> None:
    # Another process (one starting beside this one, migrating) holds the write
    # lock of a file not yet in WAL mode: switching it would fail at once, so the
    # connection goes on in the file's mode and a later one switches it.
    path = f"{tmp_path}/busy.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    db = DatabaseManager(DatabaseConfig(url=f"sqlite+aiosqlite:///{path}"))
    try:
        async with db.get_session() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
    finally:
        other.execute("COMMIT")
        other.close()
        await db.close()
    db = DatabaseManager(DatabaseConfig(url=f"sqlite+aiosqlite:///{path}"))
    try:
        async with db.get_session() as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await db.close()


async def test_sqlite_memory_database_reports_zero_sized_pool() -> None:
    db = DatabaseManager(DatabaseConfig(url="sqlite+aiosqlite:///:memory:"))
    try:
        async with db.get_session() as session:
            await session.execute(text("SELECT 1"))
        stats = await db.get_pool_stats()
        assert stats["pool_class"] == "StaticPool"
        assert stats["active_connections"] == 0
    finally:
        await db.close()


async def test_the_seed_database_snippet_runs_as_written(postgres_url: str) -> None:
    from ads_infra.database import DatabaseConfig, DatabaseManager

    # The seed's URL with our test server in place of localhost/ads_db.
    db_config = DatabaseConfig(url=postgres_url, pool_size=20, max_overflow=30)
    db_manager = DatabaseManager(db_config)
    async with db_manager.get_session() as session:
        # Database operations
        await session.execute(text("SELECT 1"))
    pool_stats = await db_manager.get_pool_stats()
    print(f"Active connections: {pool_stats['active_connections']}")
    assert pool_stats["active_connections"] == 0
    assert pool_stats["pool_size"] == 20
    await db_manager.close()
