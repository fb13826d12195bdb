"""DatabaseManager on both backends: SQLite under tmp_path and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[DatabaseManager]:
    """A DatabaseManager with a ``notes`` table, on each backend; retries are fast."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/test.db"
    else:
        url = request.getfixturevalue("postgres_url")
    manager = DatabaseManager(
        DatabaseConfig(url=url, pool_size=3, max_overflow=2, retry_delay=0.01, retry_max_delay=0.05)
    )
    async with manager.get_session() as session:
        await session.execute(
            text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50) NOT NULL UNIQUE)")
        )
    yield manager
    await manager.close()


async def count_notes(db: DatabaseManager) -> int:
    async with db.get_session() as session:
        return int((await session.execute(text("SELECT count(*) FROM notes"))).scalar_one())
