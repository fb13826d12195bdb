"""RepositoryFactory: the seed's create_*_repository() for all six, units of work, migrations.

>>> repo_factory = RepositoryFactory(db_manager)             # cache optional
>>> ads_repo = repo_factory.create_ads_repository()
>>> async with repo_factory.unit_of_work() as uow: ...
>>> await repo_factory.run(lambda uow: work(uow))           # retried unit of work
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.database import DatabaseManager
from ads_infra.repositories.ads import AdsRepositoryImpl
from ads_infra.repositories.analytics import AnalyticsRepositoryImpl
from ads_infra.repositories.base import BaseRepository
from ads_infra.repositories.campaigns import CampaignRepositoryImpl
from ads_infra.repositories.catalog import REPOSITORIES
from ads_infra.repositories.groups import GroupRepositoryImpl
from ads_infra.repositories.optimization import OptimizationRepositoryImpl
from ads_infra.repositories.performance import PerformanceRepositoryImpl
from ads_infra.repositories.scope import CacheLike, ensure_schema
from ads_infra.repositories.unit_of_work import UnitOfWork

__all__ = ["RepositoryFactory"]

T = TypeVar("T")


class RepositoryFactory:
    """Builds repositories that share one DatabaseManager and, optionally, one cache."""

    def __init__(
        self,
        db_manager: DatabaseManager,
        cache: CacheLike | None = None,
        *,
        cache_ttl: int | None = None,
    ) -> None:
        self.db_manager = db_manager
        self.cache = cache
        self.cache_ttl = cache_ttl

    def __repr__(self) -> str:
        cached = ", cached" if self.cache is not None else ""
        return f"RepositoryFactory({self.db_manager!r}{cached})"

    def create(self, name: str) -> BaseRepository:
        """A new repository ``name`` (a key of REPOSITORIES); each of its calls is its own
        retried transaction."""
        try:
            cls = REPOSITORIES[name]
        except KeyError:
            raise KeyError(
                f"no repository {name!r}; the repositories are: {', '.join(REPOSITORIES)}"
            ) from None
        return cls(self.db_manager, self.cache, cache_ttl=self.cache_ttl)

    # The seed's names, typed for callers (a test checks them against REPOSITORIES).

    def create_ads_repository(self) -> AdsRepositoryImpl:
        return cast(AdsRepositoryImpl, self.create("ads"))

    def create_campaign_repository(self) -> CampaignRepositoryImpl:
        return cast(CampaignRepositoryImpl, self.create("campaigns"))

    def create_group_repository(self) -> GroupRepositoryImpl:
        return cast(GroupRepositoryImpl, self.create("groups"))

    def create_performance_repository(self) -> PerformanceRepositoryImpl:
        return cast(PerformanceRepositoryImpl, self.create("performance"))

    def create_analytics_repository(self) -> AnalyticsRepositoryImpl:
        return cast(AnalyticsRepositoryImpl, self.create("analytics"))

    def create_optimization_repository(self) -> OptimizationRepositoryImpl:
        return cast(OptimizationRepositoryImpl, self.create("optimization"))

    def unit_of_work(self, session: AsyncSession | None = None) -> UnitOfWork:
        """A unit of work: its own transaction, or ``session``'s when given (inside db.run)."""
        return UnitOfWork(self.db_manager, self.cache, session=session)

    async def run(self, fn: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """``fn(uow)`` in one transaction, run again from the start on transient errors."""
        units: list[UnitOfWork] = []

        async def attempt(session: AsyncSession) -> T:
            uow = UnitOfWork(self.db_manager, self.cache, session=session, defer_invalidation=True)
            units[:] = [uow]
            async with uow:
                return await fn(uow)

        if self.db_manager.migrate_pending:  # before the transaction (SQLite: its lock)
            await ensure_schema(self.db_manager)
        result = await self.db_manager.run(attempt)
        await units[-1].flush_invalidations()
        return result

    async def migrate(self, revision: str = "head") -> None:
        """Create or upgrade the schema (what ``ads-infra db upgrade`` does)."""
        from ads_infra.database import migrate

        await migrate.upgrade(self.db_manager, revision)
