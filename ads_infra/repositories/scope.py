"""The scope a repository runs in: which session its statements use, and when its cache
entries are dropped.

A repository never knows whether it is on its own or one of the six of a
unit of work; it asks its :class:`RepositoryScope`:

- ``run_in_session(fn)``: run ``fn(session)``;
- ``run_read(fn)``: run ``fn(session)``, a read, which a replica may serve;
- ``fetch_row(stmt, params)``: one row, by the leanest path the scope allows
  (a replica's too);
- ``rows(query, params)``: the rows of one read statement built once per
  shape (:mod:`.statements`), as mappings, by the leanest path (on
  PostgreSQL, standalone: the driver itself, one round trip);
- ``write_row(query, params)``: one statement that writes and returns (at
  most) one row, the same way;
- ``invalidate_after_commit(keys, patterns)``: drop cache entries once what
  was written is committed;
- ``shares_transaction``: whether calls share one transaction that outlives
  them, in which case the repository neither reads nor fills the cache and
  reads through that transaction's session.

Two implementations:

- :class:`StandaloneScope` (here), what a repository built on its own gets:
  every call is one transaction through :meth:`DatabaseManager.run`, retried
  on transient errors, and invalidations happen right after that commit;
  reads go through :meth:`DatabaseManager.run_read` (a replica when one is
  fit, see :mod:`ads_infra.database.replicas`);
- :class:`~ads_infra.repositories.unit_of_work.UnitOfWork`: every call uses
  the unit's session, and invalidations wait for the unit's commit.

Both drop cache entries with :func:`invalidate`, so it lives here too. (A
missing schema is already a SchemaNotMigratedError when the database layer
raises it; where ``database.auto_migrate`` lets repositories create it, both
call :func:`ensure_schema` before their first statement.)
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, cast, runtime_checkable

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ads_infra.database import (
    DatabaseManager,
    PoolExhaustedError,
    is_transient_error,
    translate_error,
)
from ads_infra.repositories.statements import Query

__all__ = [
    "CacheLike",
    "RepositoryScope",
    "StandaloneScope",
    "ensure_schema",
    "invalidate",
    "mappings",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@runtime_checkable
class CacheLike(Protocol):
    """The part of :class:`ads_infra.cache.CacheManager` repositories use.

    A Protocol rather than the class so any cache with these methods works
    (and so the repositories do not depend on the cache package's internals).
    """

    async def get(self, key: str) -> Any: ...

    async def set(
        self, key: str, value: Any, ttl: int | None = None, *, tags: Iterable[str] = ()
    ) -> Any:
        """``tags`` is passed only when the cache has a true ``supports_tags``."""

    async def delete(self, key: str) -> Any: ...

    async def invalidate_pattern(self, pattern: str) -> Any: ...


class RepositoryScope(abc.ABC):
    """What a repository needs from the context it runs in."""

    #: True when calls share one transaction that outlives each of them (a
    #: unit of work). The transaction sees its own uncommitted writes, so the
    #: cache is neither read nor filled, and reads go through its session.
    shares_transaction: ClassVar[bool]

    @abc.abstractmethod
    async def run_in_session(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, idempotent: bool = False
    ) -> T:
        """``fn(session)`` in this scope's transaction.

        ``idempotent``: running ``fn`` twice leaves what once does, so where the
        scope retries, a commit whose outcome is unknown is retried too.
        """

    @abc.abstractmethod
    async def run_read(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, primary: bool = False
    ) -> T:
        """``fn(session)``, which only reads; ``primary`` keeps it off the replicas."""

    @abc.abstractmethod
    async def fetch_row(
        self, stmt: Any, params: Mapping[str, Any], *, primary: bool = False
    ) -> Row[Any] | None:
        """The first row of ``stmt`` (a read), or None; ``primary`` keeps it off the replicas."""

    @abc.abstractmethod
    async def fetch_all(
        self, stmt: Any, params: Mapping[str, Any] | None = None, *, primary: bool = False
    ) -> Sequence[Row[Any]]:
        """Every row of ``stmt`` (a read); ``primary`` keeps it off the replicas."""

    @abc.abstractmethod
    async def rows(
        self, query: Query, params: Mapping[str, Any], *, primary: bool = False, first: bool = False
    ) -> Sequence[Mapping[str, Any]]:
        """Every row of ``query`` (a read) as a mapping by column name, or only the first with
        ``first`` (a lookup by key, a count); ``primary`` keeps it off the replicas."""

    @abc.abstractmethod
    async def write_row(
        self, query: Query, params: Mapping[str, Any], *, idempotent: bool = False
    ) -> Mapping[str, Any] | None:
        """The row ``query`` (one statement that writes, with RETURNING) returns, or None.

        ``idempotent`` as for :meth:`run_in_session`.
        """

    @abc.abstractmethod
    async def invalidate_after_commit(self, keys: list[str], patterns: list[str]) -> None:
        """Drop ``keys`` and ``patterns`` from the cache once the work done so far is committed.

        Never before the commit: a reader in between would cache the old value again.
        """


async def ensure_schema(db: DatabaseManager) -> None:
    """Create or upgrade the schema before the first statement (while ``db.migrate_pending``)."""
    from ads_infra.database.migrate import ensure_schema as up_to_date  # Alembic, when needed

    await up_to_date(db)


class StandaloneScope(RepositoryScope):
    """Each call its own transaction through :meth:`DatabaseManager.run`, retried when transient."""

    shares_transaction = False

    def __init__(self, db_manager: DatabaseManager, cache: CacheLike | None = None) -> None:
        self._db = db_manager
        self._cache = cache

    def __repr__(self) -> str:
        return f"StandaloneScope({self._db!r})"

    async def run_in_session(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, idempotent: bool = False
    ) -> T:
        if self._db.migrate_pending:
            await ensure_schema(self._db)
        return await self._db.run(fn, idempotent=idempotent)

    async def run_read(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, primary: bool = False
    ) -> T:
        if self._db.migrate_pending:
            await ensure_schema(self._db)
        return await self._db.run_read(fn, primary=primary)

    async def fetch_row(
        self, stmt: Any, params: Mapping[str, Any], *, primary: bool = False
    ) -> Row[Any] | None:
        """One row by a lean path: a pooled connection, no ORM session, no identity map.

        Retries through :meth:`DatabaseManager.run_read` only when the fast
        try failed transiently.
        """

        rows = await self.fetch_all(stmt, params, primary=primary, limit_one=True)
        return rows[0] if rows else None

    async def fetch_all(
        self,
        stmt: Any,
        params: Mapping[str, Any] | None = None,
        *,
        primary: bool = False,
        limit_one: bool = False,
    ) -> Sequence[Row[Any]]:
        """The rows of one read statement in one round trip: a pooled connection in autocommit.

        Through a session (or a connection in its default mode) the SELECT
        is wrapped in BEGIN and ROLLBACK: three round trips where one does.
        A single statement needs no transaction to see a consistent
        snapshot, and autocommit on the driver is a flag (the pool resets it
        when the connection returns), so nothing else is sent. Behind
        PgBouncer in transaction mode each statement is its own transaction
        anyway. Retries through :meth:`DatabaseManager.run_read` only when
        this try failed transiently.
        """
        if self._db.migrate_pending:
            await ensure_schema(self._db)

        async def rows(conn: AsyncConnection) -> Sequence[Row[Any]]:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await conn.execute(stmt, params)
            if limit_one:
                first = result.first()
                return [] if first is None else [first]
            return result.all()

        try:
            return await self._db.run_read_connection(rows, primary=primary)
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            if not is_transient_error(exc):
                raise translate_error(exc, target=self._db.config.masked_url) from exc

        async def again(session: AsyncSession) -> Sequence[Row[Any]]:
            result = await session.execute(stmt, params)
            if limit_one:
                first = result.first()
                return [] if first is None else [first]
            return result.all()

        return await self.run_read(again, primary=primary)

    @property
    def _on_driver(self) -> bool:
        return self._db.backend == "postgresql"

    async def rows(
        self, query: Query, params: Mapping[str, Any], *, primary: bool = False, first: bool = False
    ) -> Sequence[Mapping[str, Any]]:
        """On PostgreSQL one ``fetch`` on the driver (a replica's when one is fit), retried
        the general way when that failed transiently.

        Behind PgBouncer in transaction mode a statement asyncpg parses and
        then executes may meet another server connection in between: then
        too the general way answers. ``first`` asks with the protocol's row
        limit of one (``fetchrow``), as a caller of the driver would:
        PostgreSQL answers a lookup by key that way sooner than when asked to
        run it to its end.
        """
        if self._db.migrate_pending:
            await ensure_schema(self._db)
        if self._on_driver:
            statement = query.driver(self._db.engine.dialect)
            sql, args = statement.sql, statement.args(params)

            async def fetch(driver: Any) -> Sequence[Mapping[str, Any]]:
                if first:
                    row: Mapping[str, Any] | None = await driver.fetchrow(sql, *args)
                    return [] if row is None else [row]
                rows: Sequence[Mapping[str, Any]] = await driver.fetch(sql, *args)
                return rows

            try:
                return await self._db.run_read_driver(fetch, primary=primary)
            except Exception as exc:
                error = translate_error(exc, target=self._db.config.masked_url)
                # An exhausted pool is raised at once: the general way would wait for it again.
                if isinstance(error, PoolExhaustedError) or not (
                    is_transient_error(exc) or self._db.config.pgbouncer
                ):
                    raise error from exc
                logger.debug("driver read failed (%s), retrying the general way", exc)
            found = await self.run_read(lambda s: mappings(s, query, params), primary=primary)
            return found[:1] if first else found
        rows = await self.fetch_all(query.core, params, primary=primary, limit_one=first)
        return [cast(Mapping[str, Any], row._mapping) for row in rows]

    async def write_row(
        self, query: Query, params: Mapping[str, Any], *, idempotent: bool = False
    ) -> Mapping[str, Any] | None:
        """On PostgreSQL one statement on the driver in autocommit, retried where that is safe
        (:meth:`DatabaseManager.run_write_driver`); behind PgBouncer, and on SQLite, in a
        transaction of its own (PgBouncer keeps a transaction on one server connection)."""
        if self._db.migrate_pending:
            await ensure_schema(self._db)
        if self._on_driver and not self._db.config.pgbouncer:
            statement = query.driver(self._db.engine.dialect)
            sql, args = statement.sql, statement.args(params)

            async def fetch(driver: Any) -> Mapping[str, Any] | None:
                row: Mapping[str, Any] | None = await driver.fetchrow(sql, *args)
                return row

            return await self._db.run_write_driver(fetch, idempotent=idempotent)
        rows = await self.run_in_session(
            lambda s: mappings(s, query, params), idempotent=idempotent
        )
        return rows[0] if rows else None

    async def invalidate_after_commit(self, keys: list[str], patterns: list[str]) -> None:
        # run_in_session has committed by the time a repository calls this.
        await invalidate(self._cache, keys, patterns)


async def mappings(
    session: AsyncSession, query: Query, params: Mapping[str, Any]
) -> Sequence[Mapping[str, Any]]:
    """The rows of ``query`` through SQLAlchemy, as mappings by column name."""
    rows = (await session.execute(query.core, params)).mappings().all()
    return cast(Sequence[Mapping[str, Any]], rows)


async def invalidate(cache: CacheLike | None, keys: Sequence[str], patterns: Sequence[str]) -> None:
    """Delete ``keys`` and every key matching ``patterns``; a failure is logged, never raised."""
    if cache is None:
        return
    try:
        # One UNLINK for all keys where the cache has it (a cascading delete can
        # drop thousands), rather than a round trip per key.
        delete_many = getattr(cache, "delete_many", None)
        if delete_many is not None and len(keys) > 1:
            await delete_many(keys)
        else:
            for key in keys:
                await cache.delete(key)
        for pattern in patterns:
            await cache.invalidate_pattern(pattern)
    except Exception as exc:  # the write is committed; a stale entry expires with its TTL
        logger.error("cache invalidation of %s %s failed: %s", keys, patterns, exc)
