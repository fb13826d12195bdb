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

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.core.errors import DatabaseError
from ads_infra.database import AFTER_COMMIT, DatabaseManager

if TYPE_CHECKING:
    from ads_infra.repositories.ads import AdsRepositoryImpl
    from ads_infra.repositories.analytics import AnalyticsRepositoryImpl
    from ads_infra.repositories.base import CacheLike
    from ads_infra.repositories.campaigns import CampaignRepositoryImpl
    from ads_infra.repositories.groups import GroupRepositoryImpl
    from ads_infra.repositories.optimization import OptimizationRepositoryImpl
    from ads_infra.repositories.performance import PerformanceRepositoryImpl

__all__ = ["UnitOfWork"]


class UnitOfWork:
    """One transaction shared by ``ads``, ``campaigns``, ``groups``, ``performance``,
    ``analytics`` and ``optimization``.

    Given a ``session`` (inside :meth:`DatabaseManager.run`), the unit joins
    that transaction and leaves commit/rollback to its owner.
    """

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
        self._scope: AbstractAsyncContextManager[AsyncSession] | None = None
        self._defer = defer_invalidation
        self._keys: list[str] = []
        self._patterns: list[str] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("use the unit of work inside `async with factory.unit_of_work()`")
        return self._session

    def defer_invalidation(self, keys: list[str], patterns: list[str]) -> None:
        self._keys.extend(keys)
        self._patterns.extend(patterns)

    async def flush_invalidations(self) -> None:
        from ads_infra.repositories.base import invalidate

        keys, patterns = list(dict.fromkeys(self._keys)), list(dict.fromkeys(self._patterns))
        self._keys.clear()
        self._patterns.clear()
        await invalidate(self._cache, keys, patterns)

    async def __aenter__(self) -> UnitOfWork:
        from ads_infra.repositories.ads import AdsRepositoryImpl
        from ads_infra.repositories.analytics import AnalyticsRepositoryImpl
        from ads_infra.repositories.campaigns import CampaignRepositoryImpl
        from ads_infra.repositories.groups import GroupRepositoryImpl
        from ads_infra.repositories.optimization import OptimizationRepositoryImpl
        from ads_infra.repositories.performance import PerformanceRepositoryImpl

        if self._owns_session:
            self._scope = self._db.get_session()
            self._session = await self._scope.__aenter__()
        db, cache = self._db, self._cache
        self.ads = AdsRepositoryImpl(db, cache, uow=self)
        self.campaigns = CampaignRepositoryImpl(db, cache, uow=self)
        self.groups = GroupRepositoryImpl(db, cache, uow=self)
        self.performance = PerformanceRepositoryImpl(db, cache, uow=self)
        self.analytics = AnalyticsRepositoryImpl(db, cache, uow=self)
        self.optimization = OptimizationRepositoryImpl(db, cache, uow=self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        from ads_infra.repositories.base import schema_error

        if self._scope is not None:
            scope, self._scope = self._scope, None
            try:
                await scope.__aexit__(exc_type, exc, tb)  # commit, or roll back and re-raise
            except DatabaseError as error:
                self._session = None
                raise schema_error(error, self._db) from error
            self._session = None
        if exc_type is None and not self._defer:
            if not self._owns_session and self._session is not None:
                # The owner commits later: drop the entries again once it has, or
                # a reader between now and then could cache the old rows back.
                self._invalidate_after_commit(self._session, self._keys, self._patterns)
            await self.flush_invalidations()  # now too, so this task reads its own writes
        return None

    def _invalidate_after_commit(
        self, session: AsyncSession, keys: list[str], patterns: list[str]
    ) -> None:
        if self._cache is None or not (keys or patterns):
            return
        from ads_infra.repositories.base import invalidate

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
