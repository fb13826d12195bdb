"""The engine's connection pool: a queue pool that counts its waiters, and a read-only view.

:class:`CountingQueuePool` is SQLAlchemy's async queue pool plus a count of
the callers waiting for a connection, so that a checkout that times out
says how exhausted the pool was (:class:`~ads_infra.database.errors.PoolTimeout`),
and the driver path's own checkout of a pooled connection
(:meth:`CountingQueuePool.lease_ready`, :meth:`CountingQueuePool.lease_queued`).
:class:`ConnectionPool` is what ``DatabaseManager.pool`` returns.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.pool.base import reset_none, reset_rollback
from sqlalchemy.util.queue import Empty

from ads_infra.database.errors import PoolTimeout

__all__ = ["ConnectionPool", "CountingQueuePool"]

# A rollback on return does nothing on a connection the driver path used (no transaction).
_NO_OP_RESETS = (reset_rollback, reset_none)


class CountingQueuePool(AsyncAdaptedQueuePool):
    """The async queue pool, counting callers waiting for a connection.

    A checkout that times out raises :class:`PoolTimeout` (a SQLAlchemy
    TimeoutError) that carries the pool's limits and how many were waiting.
    """

    waiting = 0
    # Callers in lease_queued, first come first: (deadline, future), deadlines growing
    # along the line (a caller put back in line goes to its place by deadline).
    _queued: collections.deque[tuple[float, asyncio.Future[bool]]] | None = None
    _expiry: asyncio.TimerHandle | None = None  # one timer, for the head's deadline
    _expiry_loop: asyncio.AbstractEventLoop | None = None
    _woken = 0  # callers in line told a connection is there, not yet running
    _in_line = 0  # callers in lease_queued

    # --- the driver path's checkout: a pool entry lent as it is ---------------------------

    def lease_ready(self) -> ConnectionPoolEntry | None:
        """An idle pooled connection fit for use, lent without awaiting, or None when the
        checkout could await (then :meth:`lease_queued`, or the general checkout in
        SQLAlchemy's greenlet, does it).

        An async engine checks out in a greenlet because a checkout may await:
        waiting for a connection, opening one, replacing one that is too old
        or invalidated, a pre-ping, a listener. When none of those can happen
        (an idle connection that is fit for use, nobody waiting, no ping, no
        listener), a checkout is plain bookkeeping, and the driver path needs
        none of what SQLAlchemy's checkout wraps around the entry (a proxy
        object with a weakref and a finalizer each, the reset on return): the
        entry itself is lent, and :meth:`give_back` returns it. It must come
        back exactly once, by :meth:`give_back` or :meth:`discard`.
        """
        if self.waiting or self._in_line:
            return None  # first come, first served
        return self._lend()

    async def lease_queued(self) -> ConnectionPoolEntry | None:
        """Wait in line for a connection to come back when every one is in use, and lend it
        as :meth:`lease_ready` does; None when the general checkout has to do it (a
        connection may be opened, or the one that came back must be renewed).

        The general wait runs in SQLAlchemy's greenlet, on a queue wait with its
        own timeout: at 50 callers on 10 connections nearly every call waits,
        and that machinery costs as much as the statement's client side. The
        wait here is a future per caller, woken one at a time as connections
        come back (:meth:`_do_return_conn`), under ``pool_timeout`` like the
        general wait, which raises the same :class:`PoolTimeout`. The line
        shares one timer, set for its head's deadline (:meth:`_expire`): a
        timer per caller (pushed on the loop's heap and cancelled again) was a
        large part of a waiting read's client-side work.
        """
        if not self._lendable() or self._room_to_open():
            return None
        queued = self._queued
        if queued is None:
            queued = self._queued = collections.deque()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        first = False
        self._in_line += 1
        try:
            while True:
                waiter: asyncio.Future[bool] = loop.create_future()
                entry = (deadline, waiter)
                if first:
                    # Back in line (rare): at its place by deadline, ahead of the later ones.
                    at = 0
                    while at < len(queued) and queued[at][0] <= deadline:
                        at += 1
                    queued.insert(at, entry)
                else:
                    queued.append(entry)
                if not self._woken:
                    self._wake_next()  # a connection already back is never left waiting
                self._arm(loop)
                try:
                    turn = await waiter
                except BaseException:
                    if not waiter.done() or waiter.cancelled():
                        with contextlib.suppress(ValueError):
                            queued.remove(entry)
                    elif waiter.result():
                        # Woken, then cancelled before it ran: the turn goes to the next.
                        self._woken -= 1
                        self._wake_next()
                    raise
                if not turn:
                    raise PoolTimeout(
                        size=self.size(),
                        overflow=self._max_overflow,
                        waiting=self._waiting_all(),
                        timeout=self._timeout,
                    )
                self._woken -= 1
                if self._pool.empty() and not self._room_to_open():
                    first = True  # taken by a caller of the general checkout: wait again, first
                    continue
                try:
                    return self._lend()
                finally:
                    self._wake_next()
        finally:
            self._in_line -= 1

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set the line's timer for its head's deadline, unless it is set for that or
        earlier on this loop (a timer of a loop that has ended never fires)."""
        queued = self._queued
        if not queued:
            return
        head = queued[0][0]
        expiry = self._expiry
        if expiry is not None:
            if self._expiry_loop is loop and not expiry.cancelled() and expiry.when() <= head:
                return
            expiry.cancel()
        self._expiry = loop.call_at(head, self._expire)
        self._expiry_loop = loop

    def _expire(self) -> None:
        """Tell the callers at the head of the line whose deadline has passed (the timer
        may fire a clock tick early: a millisecond's grace), and set the timer for the
        next head."""
        self._expiry = None
        queued = self._queued
        if not queued:
            return
        loop = asyncio.get_running_loop()
        now = loop.time() + 0.001
        while queued and queued[0][0] <= now:
            _, waiter = queued.popleft()
            if not waiter.done():
                waiter.set_result(False)
        self._arm(loop)

    def give_back(self, record: ConnectionPoolEntry) -> None:
        """Return an entry :meth:`lease_ready` or :meth:`lease_queued` lent, after a call that
        succeeded or that the server refused (the connection is fine).

        Nothing is reset: the driver path opens no transaction on the adapter, so
        SQLAlchemy's rollback on return would do nothing. Returning an overflow
        connection to a full pool closes it, which awaits: call it in SQLAlchemy's
        greenlet when :meth:`overflow` is above zero.
        """
        record.checkin(_fairy_was_created=False)  # type: ignore[attr-defined]

    def discard(self, record: ConnectionPoolEntry, exc: BaseException | None = None) -> None:
        """Close a lent entry's connection (its state is unknown) and return the entry, which
        the next checkout reconnects. Awaits: call it in SQLAlchemy's greenlet."""
        try:
            record.invalidate(e=exc)
        finally:
            record.checkin(_fairy_was_created=False)  # type: ignore[attr-defined]

    def _lendable(self) -> bool:
        """Whether a checkout here skips nothing SQLAlchemy's own would do: no pre-ping, no
        pool listener, no reset other than a rollback (a no-op on a connection the driver
        path used), no pool logging."""
        dispatch = self.dispatch
        return not (
            self._pre_ping
            or dispatch.checkout
            or dispatch.checkin
            or dispatch.reset
            or self._reset_on_return not in _NO_OP_RESETS
            or self._should_log_debug()
        )

    def _lend(self) -> ConnectionPoolEntry | None:
        if not self._lendable():
            return None
        try:
            record = self._pool.get_nowait()
        except Empty:
            return None
        if not self._ready(record):
            self._pool.put_nowait(record)  # the general checkout will renew it
            return None
        return record

    def _waiting_all(self) -> int:
        """Callers waiting for a connection, in either line."""
        return self.waiting + self._in_line

    def _room_to_open(self) -> bool:
        return self._max_overflow < 0 or self._overflow < self._max_overflow

    def _wake_next(self) -> None:
        """Wake the first caller in line, if a connection is there for it (or may be opened)."""
        queued = self._queued
        if not queued or (self._pool.empty() and not self._room_to_open()):
            return
        while queued:
            _, waiter = queued.popleft()
            if not waiter.done():
                waiter.set_result(True)
                self._woken += 1
                return

    def _do_return_conn(self, record: Any) -> None:
        super()._do_return_conn(record)
        if self._queued:
            self._wake_next()

    def _ready(self, record: Any) -> bool:
        """Whether checking ``record`` out uses its connection as it is: the conditions under
        which SQLAlchemy's ``_ConnectionRecord.get_connection`` would reconnect, negated."""
        start = record.starttime
        return bool(
            record.dbapi_connection is not None
            and (self._recycle < 0 or time.time() - start <= self._recycle)
            and self._invalidate_time <= start
            and record._soft_invalidate_time <= start
        )

    def _do_get(self) -> Any:
        self.waiting += 1
        try:
            return super()._do_get()
        except sa_exc.TimeoutError as exc:
            if isinstance(exc, PoolTimeout):
                raise
            raise PoolTimeout(
                size=self.size(),
                overflow=self._max_overflow,
                waiting=self._waiting_all(),
                timeout=self._timeout,
            ) from exc
        finally:
            self.waiting -= 1


class ConnectionPool:
    """A read-only view of the engine's connection pool (the seed's name).

    Works for every pool class: QueuePool-style pools report their sizes,
    the others (SQLite ``:memory:``'s StaticPool, NullPool) report zeros.
    """

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    def _call(self, name: str) -> int:
        pool = self._engine.pool if self._engine is not None else None
        method = getattr(pool, name, None)
        return int(method()) if callable(method) else 0

    @property
    def pool_class(self) -> str:
        return type(self._engine.pool).__name__ if self._engine is not None else "none"

    @property
    def size(self) -> int:
        return self._call("size")

    @property
    def checked_in(self) -> int:
        return self._call("checkedin")

    @property
    def checked_out(self) -> int:
        return self._call("checkedout")

    @property
    def overflow(self) -> int:
        # QueuePool reports -pool_size before any connection exists.
        return max(self._call("overflow"), 0)

    def stats(self) -> dict[str, Any]:
        return {
            "pool_class": self.pool_class,
            "pool_size": self.size,
            "checked_in": self.checked_in,
            "checked_out": self.checked_out,
            "active_connections": self.checked_out,
            "overflow": self.overflow,
        }
