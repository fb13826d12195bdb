"""Unit of work: one transaction across repositories; all or nothing; retried as a whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from ads_infra.database import DatabaseManager, migrate
from ads_infra.domain.entities import Ad, AdGroup, Campaign, PerformanceRecord
from ads_infra.domain.errors import ValidationError
from ads_infra.errors import IntegrityViolationError
from ads_infra.repositories import RepositoryFactory, UnitOfWork
from tests.integration.repositories.conftest import make_db

USER = 3


async def counts(factory: RepositoryFactory) -> tuple[int, int, int]:
    return (
        await factory.create_campaign_repository().count(user_id=USER),
        await factory.create_group_repository().count(user_id=USER),
        await factory.create_ads_repository().count(user_id=USER),
    )


async def build(uow: UnitOfWork) -> Ad:
    campaign = await uow.campaigns.create(Campaign(user_id=USER, name="c"))
    assert campaign.id
    group = await uow.groups.create(AdGroup(user_id=USER, campaign_id=campaign.id, name="g"))
    assert group.id
    return await uow.ads.create(
        Ad(user_id=USER, campaign_id=campaign.id, group_id=group.id, name="a")
    )


async def test_commits_once_at_the_end(factory: RepositoryFactory) -> None:
    outside = factory.create_campaign_repository()
    async with factory.unit_of_work() as uow:
        ad = await build(uow)
        assert await uow.ads.get_by_id(ad.id or 0, user_id=USER) == ad  # reads its own writes
        assert await outside.count(user_id=USER) == 0  # nobody else sees them yet
    assert await counts(factory) == (1, 1, 1)


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        ("exception", RuntimeError),
        ("validation", ValidationError),
        ("integrity", IntegrityViolationError),
    ],
)
async def test_a_unit_that_fails_midway_leaves_no_row_behind(
    factory: RepositoryFactory, failure: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        async with factory.unit_of_work() as uow:
            ad = await build(uow)
            await uow.performance.bulk_upsert(
                [PerformanceRecord(ad_id=ad.id or 0, date=ad.created_at.date(), impressions=5)],  # type: ignore[union-attr]
                user_id=USER,
            )
            if failure == "exception":
                raise RuntimeError("boom")
            if failure == "validation":
                await uow.campaigns.create(Campaign(user_id=USER, name="", daily_budget_micros=-1))
            # Bypass validation to hit a CHECK constraint in the database itself.
            await uow.session.execute(text("UPDATE campaigns SET daily_budget_micros = -1"))
    assert await counts(factory) == (0, 0, 0)
    assert await factory.create_performance_repository().count(user_id=USER) == 0


async def test_unit_of_work_joins_a_db_run_transaction(factory: RepositoryFactory) -> None:
    db = factory.db_manager

    async def work(session: object) -> Ad:
        async with factory.unit_of_work(session) as uow:  # type: ignore[arg-type]
            return await build(uow)

    await db.run(work)
    assert await counts(factory) == (1, 1, 1)

    async def failing(session: object) -> None:
        async with factory.unit_of_work(session) as uow:  # type: ignore[arg-type]
            await build(uow)
            raise RuntimeError("after the writes")

    with pytest.raises(RuntimeError):
        await db.run(failing)
    assert await counts(factory) == (1, 1, 1)


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[DatabaseManager]:
    db = make_db(postgres_url)
    await migrate.upgrade(db)
    yield db
    await db.close()


async def test_run_retries_the_whole_unit_after_a_dropped_connection(
    pg_db: DatabaseManager,
) -> None:
    """The first attempt writes, then its backend dies: the unit runs again from the start."""
    factory = RepositoryFactory(pg_db)
    attempts = 0

    async def work(uow: UnitOfWork) -> Ad:
        nonlocal attempts
        attempts += 1
        ad = await build(uow)
        if attempts == 1:
            await uow.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return ad

    ad = await factory.run(work)
    assert attempts == 2 and pg_db.retries == 1
    assert await counts(factory) == (1, 1, 1)  # the first attempt's rows are gone
    assert await factory.create_ads_repository().get_by_id(ad.id or 0, user_id=USER) == ad
