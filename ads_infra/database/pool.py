"""The engine's connection pool: a queue pool that counts its waiters, and a read-only view.

:class:`CountingQueuePool` is SQLAlchemy's async queue pool plus a count of
the callers waiting for a connection, so that a checkout that times out
says how exhausted the pool was (:class:`~ads_infra.database.errors.PoolTimeout`).
:class:`ConnectionPool` is what ``DatabaseManager.pool`` returns.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from ads_infra.database.errors import PoolTimeout

__all__ = ["ConnectionPool", "CountingQueuePool"]


class CountingQueuePool(AsyncAdaptedQueuePool):
    """The async queue pool, counting callers waiting for a connection.

    A checkout that times out raises :class:`PoolTimeout` (a SQLAlchemy
    TimeoutError) that carries the pool's limits and how many were waiting.
    """

    waiting = 0

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
                waiting=self.waiting,
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
