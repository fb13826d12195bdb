"""Reads survive dropped connections; the container builds the six repositories with the cache."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from ads_infra.cache import CacheManager
from ads_infra.config import DatabaseConfig
from ads_infra.containers import create_container
from ads_infra.database import DatabaseManager, migrate
from ads_infra.domain import Campaign, PerformanceRecord
from ads_infra.repositories import (
    AdsRepositoryImpl,
    AnalyticsRepositoryImpl,
    CampaignRepositoryImpl,
    GroupRepositoryImpl,
    OptimizationRepositoryImpl,
    PerformanceRepositoryImpl,
    RepositoryFactory,
)
from tests.integration.repositories.conftest import make_tree


async def test_get_by_id_recovers_when_the_pooled_connections_were_killed(
    postgres_url: str,
) -> None:
    # No pre-ping: the fast read path must notice the dead connection itself.
    db = DatabaseManager(
        DatabaseConfig(url=postgres_url, pool_size=3, pool_pre_ping=False, retry_delay=0.01)
    )
    try:
        await migrate.upgrade(db)
        factory = RepositoryFactory(db)
        tree = await make_tree(factory, 1)
        ads = factory.create_ads_repository()
        assert await ads.get_by_id(tree.ad.id or 0, user_id=1) == tree.ad  # the pool is warm
        dsn = make_url(postgres_url).set(drivername="postgresql")
        admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                dsn.database,
            )
        finally:
            await admin.close()
        assert killed >= 1
        assert await ads.get_by_id(tree.ad.id or 0, user_id=1) == tree.ad
        assert await ads.get_by_id(999_999, user_id=1) is None
    finally:
        await db.close()


async def _kill_backends(postgres_url: str) -> int:
    dsn = make_url(postgres_url).set(drivername="postgresql")
    admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                dsn.database,
            )
        )
    finally:
        await admin.close()


async def test_every_repository_call_recovers_from_a_killed_pool_without_pre_ping(
    postgres_url: str,
) -> None:
    """The evidence for shipping ``pool_pre_ping: false``: no call sees the dead connections."""
    config = DatabaseConfig(url=postgres_url, pool_size=4, max_overflow=0, retry_delay=0.01)
    assert config.pool_pre_ping is False  # the shipped default is what is tested
    db = DatabaseManager(config)
    try:
        await migrate.upgrade(db)
        factory = RepositoryFactory(db, CacheManager())
        tree = await make_tree(factory, 1)
        ad_id, campaign_id = tree.ad.id or 0, tree.campaign.id or 0
        ads, campaigns = factory.create_ads_repository(), factory.create_campaign_repository()
        perf, analytics = (
            factory.create_performance_repository(),
            factory.create_analytics_repository(),
        )
        day = dt.date(2026, 1, 1)
        calls: dict[str, Callable[[int], Awaitable[Any]]] = {
            "get_by_id": lambda i: ads.get_by_id(ad_id, user_id=1),
            "list": lambda i: ads.list(user_id=1),
            "count": lambda i: ads.count(user_id=1),
            "create": lambda i: campaigns.create(Campaign(user_id=1, name=f"c{i}")),
            "update": lambda i: campaigns.update(campaign_id, {"name": f"u{i}"}, user_id=1),
            "upsert": lambda i: perf.upsert(
                PerformanceRecord(ad_id=ad_id, date=day + dt.timedelta(days=i), impressions=9),
                user_id=1,
            ),
            "summaries": lambda i: analytics.summaries(
                "campaign", user_id=1, start_date=day, end_date=day
            ),
        }
        for name, call in calls.items():
            await asyncio.gather(*(call(i) for i in range(4)))  # four pooled connections
            assert await _kill_backends(postgres_url) >= 1, name
            results = await asyncio.gather(*(call(i) for i in range(8)), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            assert not failed, f"{name}: {failed[0]!r}"
    finally:
        await db.close()


async def test_container_builds_the_repositories_with_the_cache(sqlite_url: str) -> None:
    container = create_container(database={"url": sqlite_url})
    factory = container.repositories.factory()
    assert isinstance(factory, RepositoryFactory)
    assert factory.db_manager is container.database.manager()
    assert isinstance(factory.cache, CacheManager) and factory.cache is container.cache.manager()
    built = {
        "ads": AdsRepositoryImpl,
        "campaigns": CampaignRepositoryImpl,
        "groups": GroupRepositoryImpl,
        "performance": PerformanceRepositoryImpl,
        "analytics": AnalyticsRepositoryImpl,
        "optimization": OptimizationRepositoryImpl,
    }
    for name, cls in built.items():
        assert isinstance(getattr(container.repositories, name)(), cls)
    db = container.database.manager()
    await migrate.upgrade(db)
    tree = await make_tree(factory, 9)
    ads = container.repositories.ads()
    assert await ads.get_by_id(tree.ad.id or 0, user_id=9) == tree.ad
    assert await factory.cache.get(ads.cache_key(9, tree.ad.id or 0)) is not None
    await factory.cache.close()
    await db.close()
