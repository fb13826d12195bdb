"""SQLite's "database is locked" is retried: a writer waits out another writer's lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager


async def test_locked_database_is_retried_until_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    db = DatabaseManager(
        DatabaseConfig(
            url=f"sqlite+aiosqlite:///{path}",
            statement_timeout=0.05,  # sqlite3's busy timeout: fail fast with "locked"
            retry_delay=0.05,
            retry_max_delay=0.1,
            max_retries=20,
        )
    )
    async with db.get_session() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # hold the write lock
    attempts = 0

    async def unit(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            blocker.execute("COMMIT")  # let the third attempt through
        await session.execute(text("INSERT INTO t (id) VALUES (1)"))

    try:
        await db.run(unit)
    finally:
        blocker.close()
    assert attempts >= 3
    assert db.retries == attempts - 1
    async with db.get_session() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    await db.close()
