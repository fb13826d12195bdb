"""The driver's own path: one statement on a pooled asyncpg connection, in autocommit.

Through a session, a single statement is wrapped in BEGIN and COMMIT (or
ROLLBACK): three round trips where the driver needs one, plus SQLAlchemy's
connection and result objects around it. The hot repository calls (a page,
a count, a roll-up, one-row writes) are single statements, so on PostgreSQL
they run here instead: a connection checked out of the engine's own pool (its
size, overflow, waiter count and timeout apply as to any other checkout), the
statement sent by the caller on the asyncpg connection, the connection handed
back. A single statement is atomic and sees one snapshot on its own, so
nothing is lost by leaving the transaction out.

What is decided here is what a failure means for the connection and for a
write:

- the connection goes back to the pool only when the call succeeded or the
  server refused the statement (a constraint, a bad value: the connection is
  fine); on any other failure its state is unknown and it is dropped;
- a write whose statement was never applied (the checkout failed, the
  driver refused to send it on a connection it knew was closed or busy, the
  server answered with a rollback) may run again; one whose reply was lost
  after it was sent may or may not have been applied
  (:func:`outcome_unknown`), exactly like a unit of work whose COMMIT got no
  answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn

from ads_infra.database.errors import ROLLED_BACK_SQLSTATES, is_transient_error
from ads_infra.database.pool import CountingQueuePool

__all__ = ["on_driver", "outcome_unknown", "server_refused"]

T = TypeVar("T")

# asyncpg's checks before it sends anything: the statement never left the client.
_REFUSED_BEFORE_SENDING = ("connection is closed", "another operation")
# The server's own word that an administrator terminated the backend (a restart,
# pg_terminate_backend): 57P01, or its text where asyncpg folds it into a
# "connection was closed" error.
_TERMINATED = "terminating connection due to administrator command"


def server_refused(exc: BaseException) -> bool:
    """The server answered the statement with an error that is not about the connection."""
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and not is_transient_error(exc)


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a write whose statement was sent and failed with ``exc`` may have been applied.

    Not when the driver refused to send it, nor when the server refused it or
    rolled it back; otherwise (the connection broke while it ran, a timeout,
    a cancellation, the backend terminated) it may have committed before the
    reply was lost: a backend terminated between its commit and its reply
    says 57P01.
    """
    if _terminated(exc):
        return False
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        return state not in ROLLED_BACK_SQLSTATES and is_transient_error(exc)
    refused_to_send = type(exc).__module__.startswith("asyncpg") and any(
        sign in str(exc) for sign in _REFUSED_BEFORE_SENDING
    )
    return not refused_to_send


def _terminated(exc: BaseException) -> bool:
    """The backend was terminated by an administrator while the statement was in flight.

    Taken as "not applied": a terminated backend ends its transaction at its
    next interrupt check, and one already terminated (a pool of connections
    killed while idle by a restart, the usual case) never reads the
    statement. Only a signal landing between the statement's own commit and
    its reply leaves it applied: a window of microseconds, against a write
    failing after every restart of the server if this were "unknown".
    """
    current: BaseException | None = exc
    for _ in range(4):
        if current is None:
            return False
        if getattr(current, "sqlstate", None) == "57P01" or _TERMINATED in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


async def on_driver(engine: AsyncEngine, fn: Callable[[Any], Awaitable[T]]) -> T:
    """``fn(asyncpg connection)`` on a connection of ``engine``'s pool, handed back after.

    The pool's own calls run in SQLAlchemy's greenlet when they may await
    (opening, replacing or waiting for a connection; handing back an
    overflow connection closes it). An idle connection fit for use, or one
    waited for in line, is lent as its bare pool entry, without the
    greenlet or SQLAlchemy's proxy around it
    (:meth:`~ads_infra.database.pool.CountingQueuePool.lease_ready`).
    """
    pool = engine.pool
    if isinstance(pool, CountingQueuePool):
        record = pool.lease_ready() or await pool.lease_queued()
        if record is not None:
            try:
                result = await fn(record.driver_connection)
            except BaseException as exc:
                if server_refused(exc):
                    await _give_back(pool, record)
                else:  # its state is unknown: never reuse it
                    await greenlet_spawn(pool.discard, record, exc)
                raise
            if pool.overflow() <= 0:
                pool.give_back(record)  # back into a queue that has room: nothing awaits
            else:
                await greenlet_spawn(pool.give_back, record)  # an overflow one may be closed
            if pool.waiting:
                await asyncio.sleep(0)  # see _after_return
            return result
    fairy = await engine.raw_connection()
    try:
        result = await fn(fairy.driver_connection)
    except BaseException as exc:
        if server_refused(exc):
            await greenlet_spawn(fairy.close)
        else:
            await greenlet_spawn(fairy.invalidate)  # its state is unknown: never reuse it
        raise
    overflow = getattr(pool, "overflow", None)
    if callable(overflow) and overflow() <= 0:
        # Back into a queue that has room, from a connection on which the
        # adapter opened no transaction (so the reset is a no-op): nothing in
        # the hand-back awaits.
        fairy.close()
    else:
        await greenlet_spawn(fairy.close)  # an overflow connection may be closed
    return await _after_return(pool, result)


async def _give_back(pool: CountingQueuePool, record: ConnectionPoolEntry) -> None:
    if pool.overflow() <= 0:
        pool.give_back(record)  # back into a queue that has room: nothing awaits
    else:
        await greenlet_spawn(pool.give_back, record)  # an overflow connection may be closed


async def _after_return(pool: Any, result: T) -> T:
    if getattr(pool, "waiting", 0):
        # First come, first served: the caller this return woke takes the
        # connection before this task, straight back for its next statement,
        # could take it again (the tail latency of a busy pool).
        await asyncio.sleep(0)
    return result
