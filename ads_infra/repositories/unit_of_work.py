"""UnitOfWork: the six repositories sharing one session and one transaction.

>>> async with factory.unit_of_work() as uow:
...     campaign = await uow.campaigns.create(Campaign(...))
...     group = await uow.groups.create(AdGroup(campaign_id=campaign.id, ...))
... # committed here; an exception anywhere above rolls everything back

Retried as a whole on transient errors: ``await factory.run(lambda uow: ...)``
(DatabaseManager.run gives each attempt a fresh session). Cache entries the
unit's writes affect are dropped after the commit, so no reader can cache the
old value between the two; a unit joined to someone else's ``db.run`` session
drops them when it ends (so its caller reads its own writes) and again right
after that session commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.database import AFTER_COMMIT, DatabaseManager
from ads_infra.repositories.ads import AdsRepositoryImpl
from ads_infra.repositories.analytics import AnalyticsRepositoryImpl
from ads_infra.repositories.campaigns import CampaignRepositoryImpl
from ads_infra.repositories.catalog import REPOSITORIES
from ads_infra.repositories.groups import GroupRepositoryImpl
from ads_infra.repositories.optimization import OptimizationRepositoryImpl
from ads_infra.repositories.performance import PerformanceRepositoryImpl
from ads_infra.repositories.scope import (
    CacheLike,
    RepositoryScope,
    ensure_schema,
    invalidate,
    mappings,
)
from ads_infra.repositories.statements import Query

__all__ = ["UnitOfWork"]

T = TypeVar("T")


class UnitOfWork(RepositoryScope):
    """One transaction shared by ``ads``, ``campaigns``, ``groups``, ``performance``,
    ``analytics`` and ``optimization``.

    Given a ``session`` (inside :meth:`DatabaseManager.run`), the unit joins
    that transaction and leaves commit/rollback to its owner. It is the
    :class:`RepositoryScope` of its six repositories: their calls run in its
    session and their cache invalidations wait for its commit.
    """

    shares_transaction = True

    # One attribute per entry of REPOSITORIES, set on entering the unit;
    # declared here for type checkers (a test keeps the two in step).
    ads: AdsRepositoryImpl
    campaigns: CampaignRepositoryImpl
    groups: GroupRepositoryImpl
    performance: PerformanceRepositoryImpl
    analytics: AnalyticsRepositoryImpl
    optimization: OptimizationRepositoryImpl

    def __init__(
        self,
        db_manager: DatabaseManager,
        cache: CacheLike | None = None,
        *,
        session: AsyncSession | None = None,
        defer_invalidation: bool = False,
    ) -> None:
        self._db = db_manager
        self._cache = cache
        self._session = session
        self._owns_session = session is None
        self._session_context: AbstractAsyncContextManager[AsyncSession] | None = None
        self._defer = defer_invalidation
        self._keys: list[str] = []
        self._patterns: list[str] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("use the unit of work inside `async with factory.unit_of_work()`")
        return self._session

    # -- the scope of its repositories

    async def run_in_session(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, idempotent: bool = False
    ) -> T:
        # No retry here: whoever runs the unit retries it as a whole (factory.run).
        return await fn(self.session)

    async def run_read(
        self, fn: Callable[[AsyncSession], Awaitable[T]], *, primary: bool = False
    ) -> T:
        # Inside the unit, reads see its own uncommitted writes: always its session.
        return await fn(self.session)

    async def fetch_row(
        self, stmt: Any, params: Mapping[str, Any], *, primary: bool = False
    ) -> Row[Any] | None:
        return (await self.session.execute(stmt, params)).first()

    async def fetch_all(
        self, stmt: Any, params: Mapping[str, Any] | None = None, *, primary: bool = False
    ) -> Sequence[Row[Any]]:
        return (await self.session.execute(stmt, params)).all()

    async def rows(
        self, query: Query, params: Mapping[str, Any], *, primary: bool = False, first: bool = False
    ) -> Sequence[Mapping[str, Any]]:
        found = await mappings(self.session, query, params)
        return found[:1] if first else found

    async def write_row(
        self, query: Query, params: Mapping[str, Any], *, idempotent: bool = False
    ) -> Mapping[str, Any] | None:
        rows = await mappings(self.session, query, params)
        return rows[0] if rows else None

    async def invalidate_after_commit(self, keys: list[str], patterns: list[str]) -> None:
        self.defer_invalidation(keys, patterns)

    def defer_invalidation(self, keys: list[str], patterns: list[str]) -> None:
        """Remember ``keys``/``patterns`` to drop from the cache after the unit commits."""
        self._keys.extend(keys)
        self._patterns.extend(patterns)

    async def flush_invalidations(self) -> None:
        """Drop what was deferred so far (each key and pattern once)."""
        keys, patterns = list(dict.fromkeys(self._keys)), list(dict.fromkeys(self._patterns))
        self._keys.clear()
        self._patterns.clear()
        await invalidate(self._cache, keys, patterns)

    # -- the unit's life

    async def __aenter__(self) -> UnitOfWork:
        if self._owns_session:
            if self._db.migrate_pending:
                await ensure_schema(self._db)
            self._session_context = self._db.get_session()
            self._session = await self._session_context.__aenter__()
        for name, cls in REPOSITORIES.items():
            setattr(self, name, cls(self._db, self._cache, scope=self))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._session_context is not None:
            context, self._session_context = self._session_context, None
            try:
                await context.__aexit__(exc_type, exc, tb)  # commit, or roll back and re-raise
            finally:
                self._session = None
        if exc_type is None and not self._defer:
            if not self._owns_session and self._session is not None:
                # The owner commits later: drop the entries again once it has, or
                # a reader between now and then could cache the old rows back.
                self._drop_again_after_owner_commits(self._session, self._keys, self._patterns)
            await self.flush_invalidations()  # now too, so this task reads its own writes
        return None

    def _drop_again_after_owner_commits(
        self, session: AsyncSession, keys: list[str], patterns: list[str]
    ) -> None:
        if self._cache is None or not (keys or patterns):
            return
        cache = self._cache
        keys, patterns = list(dict.fromkeys(keys)), list(dict.fromkeys(patterns))

        async def committed() -> None:
            await invalidate(cache, keys, patterns)

        # DatabaseManager's session scope awaits these right after its commit.
        session.info.setdefault(AFTER_COMMIT, []).append(committed)

    async def commit(self) -> None:
        """Commit what was done so far (the unit goes on in a new transaction).

        Only in a unit that owns its transaction: inside ``factory.run`` or a
        joined ``db.run`` session, a retry would run the whole unit again and
        repeat what was committed here.
        """
        if not self._owns_session:
            raise RuntimeError(
                "commit() in a unit that joined another transaction (factory.run or "
                "unit_of_work(session)): its owner commits, and a retry would repeat "
                "what this committed; use `async with factory.unit_of_work()` to commit midway"
            )
        await self.session.commit()
        await self.flush_invalidations()

    async def rollback(self) -> None:
        await self.session.rollback()
        self._keys.clear()
        self._patterns.clear()
