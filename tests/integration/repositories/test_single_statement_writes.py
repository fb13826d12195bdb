"""Writes that are one statement: the ownership and cross-field checks inside that statement
refuse what the separate checks refused before, with the same errors, and write nothing.

On every backend (SQLite, PostgreSQL, PgBouncer), standalone and in a unit of work (where a
refused insert must leave the unit's transaction usable).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from ads_infra.database import DatabaseManager
from ads_infra.database.tables import ad_groups, ads, campaigns, optimization_suggestions
from ads_infra.database.tables import performance_daily as perf_table
from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    Campaign,
    OptimizationSuggestion,
    PerformanceRecord,
    SuggestionType,
)
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.repositories import RepositoryFactory
from tests.integration.repositories.conftest import Tree, make_tree

A, B = 3101, 3202
DAY = dt.date(2024, 5, 1)


async def _rows(db: DatabaseManager) -> dict[str, int]:
    """How many rows each table holds."""
    out = {}
    for table in (campaigns, ad_groups, ads, optimization_suggestions, perf_table):
        out[table.name] = await db.run(
            lambda s, t=table: _count(s, t)  # type: ignore[misc]
        )
    return out


async def _count(session: Any, table: Any) -> int:
    return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


@pytest.fixture
async def trees(factory: RepositoryFactory) -> tuple[Tree, Tree]:
    return await make_tree(factory, A, "a"), await make_tree(factory, B, "b")


async def test_creates_under_another_users_parents_are_refused_by_name(
    factory: RepositoryFactory, db: DatabaseManager, trees: tuple[Tree, Tree]
) -> None:
    a, b = trees
    assert a.campaign.id and a.group.id and a.ad.id and b.campaign.id and b.group.id
    before = await _rows(db)
    groups, ads_repo = factory.create_group_repository(), factory.create_ads_repository()
    suggestions = factory.create_optimization_repository()

    with pytest.raises(ValidationError) as caught:
        await groups.create(AdGroup(user_id=B, campaign_id=a.campaign.id, name="stolen"))
    assert caught.value.field == "campaign_id"

    with pytest.raises(ValidationError) as caught:
        await ads_repo.create(
            Ad(user_id=B, campaign_id=a.campaign.id, group_id=a.group.id, name="stolen")
        )
    assert caught.value.field == "group_id"

    # B's own group, named with A's campaign: the group is B's, the campaign is not its.
    with pytest.raises(ValidationError) as caught:
        await ads_repo.create(
            Ad(user_id=B, campaign_id=a.campaign.id, group_id=b.group.id, name="mixed")
        )
    assert caught.value.field == "campaign_id"

    refused = [
        ("campaign_id", OptimizationSuggestion(
            user_id=B, campaign_id=a.campaign.id, type=SuggestionType.BUDGET)),
        ("group_id", OptimizationSuggestion(
            user_id=B, campaign_id=b.campaign.id, group_id=a.group.id, type=SuggestionType.BID)),
        ("ad_id", OptimizationSuggestion(
            user_id=B, campaign_id=b.campaign.id, ad_id=a.ad.id, type=SuggestionType.CREATIVE)),
    ]  # fmt: skip
    for field, suggestion in refused:
        with pytest.raises(ValidationError) as caught:
            await suggestions.create(suggestion)
        assert caught.value.field == field

    assert await _rows(db) == before


async def test_a_create_with_owned_parents_still_works_for_every_shape(
    factory: RepositoryFactory, trees: tuple[Tree, Tree]
) -> None:
    a, _ = trees
    assert a.campaign.id and a.group.id and a.ad.id
    suggestions = factory.create_optimization_repository()
    for group_id, ad_id in (
        (None, None),
        (a.group.id, None),
        (None, a.ad.id),
        (a.group.id, a.ad.id),
    ):
        created = await suggestions.create(
            OptimizationSuggestion(
                user_id=A, campaign_id=a.campaign.id, group_id=group_id, ad_id=ad_id,
                type=SuggestionType.BUDGET, payload={"daily_budget_micros": 5},
            )
        )  # fmt: skip
        assert created.id is not None
        stored = await suggestions.get_by_id(created.id, user_id=A)
        assert stored == created


async def test_upsert_of_another_users_ad_is_not_found_and_writes_nothing(
    factory: RepositoryFactory, db: DatabaseManager, trees: tuple[Tree, Tree]
) -> None:
    a, _ = trees
    assert a.ad.id
    before = await _rows(db)
    with pytest.raises(NotFoundError):
        await factory.create_performance_repository().upsert(
            PerformanceRecord(ad_id=a.ad.id, date=DAY, impressions=10), user_id=B
        )
    assert await _rows(db) == before


async def test_upsert_returns_the_stored_row_with_the_ads_campaign_and_group(
    factory: RepositoryFactory, trees: tuple[Tree, Tree]
) -> None:
    a, _ = trees
    assert a.ad.id
    perf = factory.create_performance_repository()
    record = PerformanceRecord(
        ad_id=a.ad.id, date=DAY, impressions=10, clicks=2, conversions=Decimal("1.25"),
        cost_micros=300, conversion_value_micros=900,
    )  # fmt: skip
    stored = await perf.upsert(record, user_id=A)
    assert (stored.user_id, stored.campaign_id, stored.group_id) == (
        A, a.campaign.id, a.group.id,
    )  # fmt: skip
    assert stored == await perf.get(a.ad.id, DAY, user_id=A)
    again = await perf.upsert(PerformanceRecord(ad_id=a.ad.id, date=DAY, impressions=11), user_id=A)
    assert again.impressions == 11 and again.conversions == Decimal(0)


async def test_update_keeps_the_cross_field_rules_against_the_stored_values(
    factory: RepositoryFactory, db: DatabaseManager
) -> None:
    repo = factory.create_campaign_repository()
    campaign = await repo.create(
        Campaign(user_id=A, name="dated", start_date=dt.date(2024, 6, 1),
                 daily_budget_micros=10, total_budget_micros=100)
    )  # fmt: skip
    assert campaign.id
    with pytest.raises(ValidationError) as caught:
        await repo.update(campaign.id, {"end_date": dt.date(2024, 5, 1)}, user_id=A)
    assert caught.value.field == "end_date"
    with pytest.raises(ValidationError) as caught:
        await repo.update(campaign.id, {"daily_budget_micros": 1000}, user_id=A)
    assert caught.value.field == "total_budget_micros"
    assert await repo.get_by_id(campaign.id, user_id=A) == campaign

    moved = await repo.update(campaign.id, {"end_date": dt.date(2024, 7, 1)}, user_id=A)
    assert moved.end_date == dt.date(2024, 7, 1) and moved.start_date == campaign.start_date
    assert moved == await repo.get_by_id(campaign.id, user_id=A)


async def test_update_of_another_users_row_is_not_found_and_changes_nothing(
    factory: RepositoryFactory, trees: tuple[Tree, Tree]
) -> None:
    a, _ = trees
    assert a.campaign.id
    repo = factory.create_campaign_repository()
    with pytest.raises(NotFoundError):
        await repo.update(a.campaign.id, {"name": "taken"}, user_id=B)
    assert await repo.get_by_id(a.campaign.id, user_id=A) == a.campaign


async def test_a_refused_create_leaves_the_unit_of_work_usable(
    factory: RepositoryFactory, db: DatabaseManager, trees: tuple[Tree, Tree]
) -> None:
    a, b = trees
    assert a.group.id and a.campaign.id and b.campaign.id
    async with factory.unit_of_work() as uow:
        with pytest.raises(ValidationError):
            await uow.ads.create(
                Ad(user_id=B, campaign_id=a.campaign.id, group_id=a.group.id, name="stolen")
            )
        group = await uow.groups.create(AdGroup(user_id=B, campaign_id=b.campaign.id, name="ok"))
        assert group.id is not None
    stored = await factory.create_group_repository().get_by_id(group.id, user_id=B)
    assert stored is not None and stored.name == "ok"
