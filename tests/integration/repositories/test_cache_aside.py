"""Cache-aside with the real CacheManager (memory, and Redis in a unique namespace).

A cached read is proven cached by changing the row behind the repository's
back: the repository keeps returning the cached value until a write through
it invalidates the entry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.cache import CacheConfig, CacheManager, CacheType
from ads_infra.database import DatabaseManager
from ads_infra.domain.entities import (
    Ad,
    OptimizationSuggestion,
    PerformanceRecord,
    Status,
    SuggestionType,
)
from ads_infra.repositories import RepositoryFactory
from ads_infra.repositories.unit_of_work import UnitOfWork
from tests.integration.repositories.conftest import make_tree

USER, OTHER = 21, 22


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[CacheManager]:
    if request.param == "memory":
        manager = CacheManager(CacheConfig(namespace=namespace))
    else:
        url = request.getfixturevalue("redis_url")
        manager = CacheManager(
            CacheConfig(cache_type=CacheType.REDIS, redis_url=url, namespace=namespace,
                        fallback_enabled=False)
        )  # fmt: skip
    await manager.start()
    yield manager
    await manager.clear()
    await manager.close()


@pytest.fixture
def cached(db: DatabaseManager, cache: CacheManager) -> RepositoryFactory:
    return RepositoryFactory(db, cache)


async def behind_the_back(db: DatabaseManager, sql: str, **params: object) -> None:
    async with db.get_session() as session:
        await session.execute(text(sql), params)


async def test_get_by_id_is_cached_and_invalidated_by_update_and_delete(
    cached: RepositoryFactory, cache: CacheManager, db: DatabaseManager
) -> None:
    tree = await make_tree(cached, USER)
    ads = cached.create_ads_repository()
    ad_id = tree.ad.id or 0
    first = await ads.get_by_id(ad_id, user_id=USER)
    stored = await cache.get(ads.cache_key(USER, ad_id))
    assert isinstance(stored, dict) and json.loads(json.dumps(stored)) == stored  # JSON-safe

    await behind_the_back(db, "UPDATE ads SET name = 'changed behind' WHERE id = :id", id=ad_id)
    assert await ads.get_by_id(ad_id, user_id=USER) == first  # served from the cache
    assert await ads.get_by_id(ad_id, user_id=OTHER) is None  # never another user's entry

    updated = await ads.update(ad_id, {"status": Status.ACTIVE}, user_id=USER)
    assert await cache.get(ads.cache_key(USER, ad_id)) is None
    again = await ads.get_by_id(ad_id, user_id=USER)
    assert again == updated and again is not None and again.name == "changed behind"

    await ads.delete(ad_id, user_id=USER)
    assert await ads.get_by_id(ad_id, user_id=USER) is None


async def test_user_stats_are_cached_and_invalidated_by_every_write_that_changes_them(
    cached: RepositoryFactory, db: DatabaseManager
) -> None:
    tree = await make_tree(cached, USER)
    ads = cached.create_ads_repository()
    assert tree.campaign.id and tree.group.id and tree.ad.id
    stats = await ads.get_user_stats(USER)
    assert stats.ads_by_status == {"draft": 1}
    await behind_the_back(db, "UPDATE ads SET status = 'paused'")
    assert (await ads.get_user_stats(USER)).ads_by_status == {"draft": 1}  # cached

    await ads.create(
        Ad(user_id=USER, campaign_id=tree.campaign.id, group_id=tree.group.id, name="b")
    )
    assert (await ads.get_user_stats(USER)).ads_by_status == {"paused": 1, "draft": 1}

    await cached.create_performance_repository().bulk_upsert(
        [
            PerformanceRecord(
                ad_id=tree.ad.id, date=dt.date(2024, 1, 1), impressions=10, cost_micros=5
            )
        ],
        user_id=USER,
    )
    assert (await ads.get_user_stats(USER)).spend_micros == 5

    await ads.update(tree.ad.id, {"status": "active"}, user_id=USER)
    assert (await ads.get_user_stats(USER)).ads_by_status == {"active": 1, "draft": 1}

    await cached.create_campaign_repository().delete(tree.campaign.id, user_id=USER)
    stats = await ads.get_user_stats(USER)
    assert stats.total_ads == 0 and stats.spend_micros == 0


async def test_a_unit_of_work_invalidates_after_commit_and_not_on_rollback(
    cached: RepositoryFactory, cache: CacheManager
) -> None:
    tree = await make_tree(cached, USER)
    campaigns = cached.create_campaign_repository()
    cid = tree.campaign.id or 0
    key = campaigns.cache_key(USER, cid)
    await campaigns.get_by_id(cid, user_id=USER)

    with pytest.raises(RuntimeError):
        async with cached.unit_of_work() as uow:
            await uow.campaigns.update(cid, {"name": "never"}, user_id=USER)
            raise RuntimeError("roll back")
    assert await cache.get(key) is not None  # nothing changed, nothing dropped
    assert (await campaigns.get_by_id(cid, user_id=USER)).name == tree.campaign.name  # type: ignore[union-attr]

    async with cached.unit_of_work() as uow:
        await uow.campaigns.update(cid, {"name": "renamed"}, user_id=USER)
        assert await cache.get(key) is not None  # not before the commit
    assert await cache.get(key) is None
    assert (await campaigns.get_by_id(cid, user_id=USER)).name == "renamed"  # type: ignore[union-attr]

    async def rename(uow: object) -> None:
        await uow.campaigns.update(cid, {"name": "via run"}, user_id=USER)  # type: ignore[attr-defined]

    await campaigns.get_by_id(cid, user_id=USER)
    await cached.run(rename)  # type: ignore[arg-type]
    assert (await campaigns.get_by_id(cid, user_id=USER)).name == "via run"  # type: ignore[union-attr]


async def test_deleting_an_ad_drops_its_cached_suggestions(cached: RepositoryFactory) -> None:
    tree = await make_tree(cached, USER)
    suggestions = cached.create_optimization_repository()
    suggestion = await suggestions.create(
        OptimizationSuggestion(
            user_id=USER,
            campaign_id=tree.campaign.id or 0,
            ad_id=tree.ad.id,
            type=SuggestionType.CREATIVE,
        )
    )
    assert await suggestions.get_by_id(suggestion.id or 0, user_id=USER) is not None  # cached
    await cached.create_ads_repository().delete(tree.ad.id or 0, user_id=USER)
    # The database cascaded the delete; the cache must not keep serving the suggestion.
    assert await suggestions.get_by_id(suggestion.id or 0, user_id=USER) is None


async def test_a_unit_joined_to_db_run_drops_entries_again_after_the_commit(
    cached: RepositoryFactory, db: DatabaseManager
) -> None:
    tree = await make_tree(cached, USER)
    campaigns = cached.create_campaign_repository()
    campaign_id = tree.campaign.id or 0
    assert await campaigns.get_by_id(campaign_id, user_id=USER) is not None  # cached

    async def work(session: AsyncSession) -> None:
        async with cached.unit_of_work(session) as uow:
            await uow.campaigns.update(campaign_id, {"name": "renamed"}, user_id=USER)
        # Not committed yet: a reader now caches the old row again...
        old = await campaigns.get_by_id(campaign_id, user_id=USER)
        assert old is not None and old.name != "renamed"

    await db.run(work)
    # ...and the commit drops it once more, so nobody reads the old name after it.
    got = await campaigns.get_by_id(campaign_id, user_id=USER)
    assert got is not None and got.name == "renamed"


async def test_commit_midway_only_in_a_unit_that_owns_its_transaction(
    cached: RepositoryFactory,
) -> None:
    tree = await make_tree(cached, USER)
    campaign_id = tree.campaign.id or 0

    async def work(uow: UnitOfWork) -> None:
        await uow.campaigns.update(campaign_id, {"name": "step 1"}, user_id=USER)
        await uow.commit()  # a retry of run() would repeat it: refused

    with pytest.raises(RuntimeError, match="joined another transaction"):
        await cached.run(work)
    async with cached.unit_of_work() as uow:
        await uow.campaigns.update(campaign_id, {"name": "step 1"}, user_id=USER)
        await uow.commit()
        await uow.campaigns.update(campaign_id, {"name": "step 2"}, user_id=USER)
    got = await cached.create_campaign_repository().get_by_id(campaign_id, user_id=USER)
    assert got is not None and got.name == "step 2"


async def test_a_cascading_delete_drops_exactly_what_the_database_deleted(
    cached: RepositoryFactory, cache: CacheManager
) -> None:
    """Deleting a group drops its own, its ads' and their suggestions' entries, by key.

    A suggestion of one of the group's ads that names no group is still
    deleted by the database (through its ad), so its entry goes too; the
    entries of another campaign's rows stay cached.
    """
    tree = await make_tree(cached, USER, "one")
    other = await make_tree(cached, USER, "two")
    groups, ads = cached.create_group_repository(), cached.create_ads_repository()
    suggestions = cached.create_optimization_repository()
    through_ad = await suggestions.create(
        OptimizationSuggestion(
            user_id=USER, campaign_id=tree.campaign.id or 0, ad_id=tree.ad.id,
            type=SuggestionType.CREATIVE,
        )
    )  # fmt: skip
    sid, ad_id, kept_id = through_ad.id or 0, tree.ad.id or 0, other.ad.id or 0
    for repo, entity_id in ((suggestions, sid), (ads, ad_id), (ads, kept_id)):
        assert await repo.get_by_id(entity_id, user_id=USER) is not None  # now cached

    await groups.delete(tree.group.id or 0, user_id=USER)

    assert await cache.get(ads.cache_key(USER, ad_id)) is None
    assert await cache.get(suggestions.cache_key(USER, sid)) is None
    assert await cache.get(ads.cache_key(USER, kept_id)) is not None
    assert await suggestions.get_by_id(sid, user_id=USER) is None
    assert await ads.get_by_id(ad_id, user_id=USER) is None


async def test_one_users_entries_are_dropped_by_their_tag(
    cached: RepositoryFactory, cache: CacheManager
) -> None:
    """Everything a repository caches carries its user's tag, and only that user's."""
    from ads_infra.repositories.keys import user_tag

    mine, theirs = await make_tree(cached, USER), await make_tree(cached, OTHER)
    ads, campaigns = cached.create_ads_repository(), cached.create_campaign_repository()
    for tree, user in ((mine, USER), (theirs, OTHER)):
        await ads.get_by_id(tree.ad.id or 0, user_id=user)
        await campaigns.get_by_id(tree.campaign.id or 0, user_id=user)
        await ads.get_user_stats(user)

    assert await cache.invalidate_tags(user_tag(USER)) == 3
    assert await cache.get(ads.cache_key(USER, mine.ad.id or 0)) is None
    assert await cache.get(ads.cache_key(OTHER, theirs.ad.id or 0)) is not None
    assert await cache.invalidate_tags(user_tag(OTHER)) == 3
