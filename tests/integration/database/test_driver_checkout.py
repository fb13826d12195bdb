"""The driver path's own checkout (CountingQueuePool.lease_ready / lease_queued) on a real
PostgreSQL: callers take turns on a full pool, a wait ends in PoolTimeout, a cancelled waiter
passes its turn on, and a connection that must be renewed still is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event, text

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager
from ads_infra.database.errors import PoolTimeout


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[DatabaseManager]:
    """One connection, no overflow: every second caller waits."""
    manager = DatabaseManager(
        DatabaseConfig(url=postgres_url, pool_size=1, max_overflow=0, pool_timeout=2)
    )
    await manager.start()
    yield manager
    await manager.close()


async def backend_pid(db: DatabaseManager) -> int:
    async def pid(driver: Any) -> int:
        return int(await driver.fetchval("SELECT pg_backend_pid()"))

    return await db.run_read_driver(pid)


async def test_callers_of_a_full_pool_take_turns(db: DatabaseManager) -> None:
    async def slow(driver: Any) -> int:
        return int(await driver.fetchval("SELECT 1 FROM pg_sleep(0.005)"))

    results = await asyncio.gather(*(db.run_read_driver(slow) for _ in range(30)))
    assert results == [1] * 30
    assert db.pool.checked_out == 0 and db.pool.checked_in == 1


async def test_driver_calls_and_sessions_share_a_full_pool(db: DatabaseManager) -> None:
    async def driver_call(driver: Any) -> int:
        return int(await driver.fetchval("SELECT 2"))

    async def session_call() -> int:
        async with db.get_session() as session:
            return int((await session.execute(text("SELECT 3"))).scalar_one())

    calls = [db.run_read_driver(driver_call) if i % 2 else session_call() for i in range(20)]
    assert sorted(await asyncio.gather(*calls)) == [2] * 10 + [3] * 10
    assert db.pool.checked_out == 0


async def test_a_wait_longer_than_pool_timeout_raises_pool_timeout(postgres_url: str) -> None:
    db = DatabaseManager(
        DatabaseConfig(url=postgres_url, pool_size=1, max_overflow=0, pool_timeout=1)
    )
    try:
        async with db.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            with pytest.raises(PoolTimeout) as caught:
                await backend_pid(db)
        assert caught.value.waiting == 1
        await backend_pid(db)  # the pool is fine once the connection is back
    finally:
        await db.close()


async def test_each_caller_in_line_waits_its_own_pool_timeout(postgres_url: str) -> None:
    """The line shares one timer: the first caller's deadline ends its wait only, and the
    caller behind it keeps waiting to its own deadline."""
    db = DatabaseManager(
        DatabaseConfig(url=postgres_url, pool_size=1, max_overflow=0, pool_timeout=3)
    )
    try:
        async with db.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            first = asyncio.create_task(backend_pid(db))
            await asyncio.sleep(2)
            second = asyncio.create_task(backend_pid(db))
            with pytest.raises(PoolTimeout):
                await first
            assert not second.done()  # its deadline is two seconds later
        # The connection is back before the second caller's deadline: it gets it.
        assert await asyncio.wait_for(second, 10) > 0
        assert db.pool.checked_out == 0
    finally:
        await db.close()


async def test_a_cancelled_waiter_passes_its_turn_on(db: DatabaseManager) -> None:
    async with db.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        first = asyncio.create_task(backend_pid(db))
        second = asyncio.create_task(backend_pid(db))
        await asyncio.sleep(0.05)  # both are in line
        first.cancel()
    # The connection came back while the first was cancelled: the second gets it.
    assert await asyncio.wait_for(second, 5) > 0
    with pytest.raises(asyncio.CancelledError):
        await first
    assert db.pool.checked_out == 0


async def test_a_connection_invalidated_in_the_pool_is_renewed(db: DatabaseManager) -> None:
    before = await backend_pid(db)
    fairy = await db.engine.raw_connection()
    fairy.invalidate(soft=True)  # renewed at its next checkout, not now
    fairy.close()
    after = await backend_pid(db)
    assert after != before
    assert await backend_pid(db) == after  # and then reused as it is


async def test_a_backend_killed_while_idle_is_replaced(db: DatabaseManager) -> None:
    pid = await backend_pid(db)
    async with DatabaseManager(DatabaseConfig(url=db.config.url, pool_size=1)) as other:
        async with other.get_session() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(100):  # the backend exits on its own time
            async with other.get_session() as session:
                alive = await session.execute(
                    text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                if alive.first() is None:
                    break
            await asyncio.sleep(0.02)
    # The first call meets the dead connection (the driver's error; the connection is
    # dropped) ...
    with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresError, OSError)):
        await backend_pid(db)
    # ... and the next is served by a new one.
    assert await backend_pid(db) != pid


async def test_a_refused_statement_hands_its_connection_back_as_it_is(db: DatabaseManager) -> None:
    before = await backend_pid(db)

    async def bad(driver: Any) -> Any:
        return await driver.fetchval("SELECT 1 / 0")

    with pytest.raises(asyncpg.DivisionByZeroError):
        await db.run_read_driver(bad)
    assert db.pool.checked_out == 0
    assert await backend_pid(db) == before  # the same connection, reused


async def test_pool_listeners_see_every_driver_call(db: DatabaseManager) -> None:
    # A listener is something the driver path's own checkout would skip: with one,
    # the call takes SQLAlchemy's checkout, so the listener runs.
    seen: list[str] = []
    pool = db.engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: seen.append("out"))
    event.listen(pool, "checkin", lambda *_: seen.append("in"))
    await backend_pid(db)
    await backend_pid(db)
    assert seen == ["out", "in", "out", "in"]
    assert db.pool.checked_out == 0
