"""The driver path's waiting line (CountingQueuePool.lease_queued), on a pool of stand-in
connections: who times out, in which order, on which loop."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from ads_infra.database.errors import PoolTimeout
from ads_infra.database.pool import CountingQueuePool


class Connection:
    """All a pooled DBAPI connection needs to be for the pool's bookkeeping."""

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def full_pool(timeout: float) -> CountingQueuePool:
    pool = CountingQueuePool(cast(Any, Connection), pool_size=1, max_overflow=0, timeout=timeout)
    pool._do_get()  # the only connection, in use (never given back here)
    return pool


async def test_callers_put_back_in_line_keep_their_own_deadlines() -> None:
    """Woken, then beaten to the connection by a caller of the general checkout: both go
    back in line, and the one that came first still times out first."""
    pool = full_pool(timeout=0.3)
    ended: list[str] = []

    async def wait(name: str) -> None:
        with pytest.raises(PoolTimeout):
            await pool.lease_queued()
        ended.append(name)

    first = asyncio.create_task(wait("first"))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(wait("second"))
    await asyncio.sleep(0.01)
    assert pool._queued is not None and len(pool._queued) == 2
    for _, told in list(pool._queued):  # a connection came back for each: both told...
        told.set_result(True)
        pool._woken += 1
    pool._queued.clear()  # ...and it is gone again when they run
    await asyncio.gather(first, second)
    assert ended == ["first", "second"]
    assert (pool._woken, pool._in_line) == (0, 0)


def test_a_timer_left_by_an_ended_loop_does_not_stop_the_next_loop_s_timeouts() -> None:
    pool = full_pool(timeout=0.2)

    async def abandoned() -> None:
        waiter = asyncio.create_task(pool.lease_queued())
        await asyncio.sleep(0.01)
        waiter.cancel()  # the loop ends before the line's timer fires

    async def waits() -> None:
        with pytest.raises(PoolTimeout):
            await asyncio.wait_for(pool.lease_queued(), 5)

    asyncio.run(abandoned())
    asyncio.run(waits())
