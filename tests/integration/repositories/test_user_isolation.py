"""User B cannot read, change or delete user A's rows: every method that takes an id."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    OptimizationSuggestion,
    PerformanceRecord,
    SuggestionType,
)
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.repositories import AdFilter, GroupFilter, PerformanceFilter
from ads_infra.repositories import RepositoryFactory
from tests.integration.repositories.conftest import Tree, make_tree

A, B = 1001, 2002
DAY = dt.date(2024, 3, 1)


@pytest.fixture
async def world(factory: RepositoryFactory) -> tuple[Tree, Tree, int]:
    """Both users own a tree; A has performance and a suggestion."""
    a, b = await make_tree(factory, A, "a"), await make_tree(factory, B, "b")
    assert a.ad.id and a.campaign.id
    await factory.create_performance_repository().bulk_upsert(
        [PerformanceRecord(ad_id=a.ad.id, date=DAY, impressions=100, clicks=5,
                           conversions=Decimal(1), cost_micros=2_000_000)],
        user_id=A,
    )  # fmt: skip
    s = await factory.create_optimization_repository().create(
        OptimizationSuggestion(user_id=A, campaign_id=a.campaign.id, type=SuggestionType.BUDGET)
    )
    assert s.id
    return a, b, s.id


async def test_entity_repositories(
    factory: RepositoryFactory, world: tuple[Tree, Tree, int]
) -> None:
    a, _, suggestion_id = world
    repos_and_ids = [
        (factory.create_campaign_repository(), a.campaign.id, {"name": "hijacked"}),
        (factory.create_group_repository(), a.group.id, {"name": "hijacked"}),
        (factory.create_ads_repository(), a.ad.id, {"name": "hijacked"}),
        (factory.create_optimization_repository(), suggestion_id, {"title": "hijacked"}),
    ]
    for repo, entity_id, changes in repos_and_ids:
        assert entity_id is not None
        before = await repo.get_by_id(entity_id, user_id=A)  # type: ignore[attr-defined]
        assert before is not None
        assert await repo.get_by_id(entity_id, user_id=B) is None  # type: ignore[attr-defined]
        with pytest.raises(NotFoundError):
            await repo.update(entity_id, changes, user_id=B)  # type: ignore[attr-defined]
        with pytest.raises(NotFoundError):
            await repo.delete(entity_id, user_id=B)  # type: ignore[attr-defined]
        assert await repo.get_by_id(entity_id, user_id=A) == before  # type: ignore[attr-defined]
        assert all(x.user_id == B for x in await repo.list(user_id=B))  # type: ignore[attr-defined]

    opt = factory.create_optimization_repository()
    with pytest.raises(NotFoundError):
        await opt.apply(suggestion_id, user_id=B)
    with pytest.raises(NotFoundError):
        await opt.dismiss(suggestion_id, user_id=B)
    still = await opt.get_by_id(suggestion_id, user_id=A)
    assert still is not None and still.status == "pending"

    # Filters naming A's ids give B nothing.
    assert (
        await factory.create_ads_repository().count(
            user_id=B, filters=AdFilter(campaign_id=a.campaign.id)
        )
        == 0
    )
    assert (
        await factory.create_group_repository().count(
            user_id=B, filters=GroupFilter(campaign_id=a.campaign.id)
        )
        == 0
    )


async def test_foreign_ids_of_another_user_are_refused_on_create(
    factory: RepositoryFactory, world: tuple[Tree, Tree, int]
) -> None:
    a, b, _ = world
    assert a.campaign.id and a.group.id and a.ad.id and b.campaign.id and b.group.id
    with pytest.raises(ValidationError) as exc:
        await factory.create_group_repository().create(
            AdGroup(user_id=B, campaign_id=a.campaign.id, name="g")
        )
    assert exc.value.field == "campaign_id"
    with pytest.raises(ValidationError) as exc:
        await factory.create_ads_repository().create(
            Ad(user_id=B, campaign_id=a.campaign.id, group_id=a.group.id, name="x")
        )
    assert exc.value.field == "group_id"
    opt = factory.create_optimization_repository()
    for kwargs, field in (
        ({"campaign_id": a.campaign.id}, "campaign_id"),
        ({"campaign_id": b.campaign.id, "group_id": a.group.id}, "group_id"),
        ({"campaign_id": b.campaign.id, "ad_id": a.ad.id}, "ad_id"),
    ):
        with pytest.raises(ValidationError) as exc:
            await opt.create(OptimizationSuggestion(user_id=B, type=SuggestionType.BID, **kwargs))  # type: ignore[arg-type]
        assert exc.value.field == field
    assert await opt.count(user_id=B) == 0


async def test_performance_and_analytics(
    factory: RepositoryFactory, world: tuple[Tree, Tree, int]
) -> None:
    a, _, _ = world
    assert a.ad.id and a.campaign.id and a.group.id
    perf = factory.create_performance_repository()
    assert await perf.get(a.ad.id, DAY, user_id=B) is None
    assert await perf.get(a.ad.id, DAY, user_id=A) is not None
    with pytest.raises(NotFoundError):  # B cannot write rows for A's ad
        await perf.bulk_upsert(
            [PerformanceRecord(ad_id=a.ad.id, date=DAY, impressions=1)], user_id=B
        )
    assert await perf.delete(user_id=B, filters=PerformanceFilter(ad_id=a.ad.id)) == 0
    assert await perf.count(user_id=B) == 0 and len(await perf.list(user_id=B)) == 0
    stored = await perf.get(a.ad.id, DAY, user_id=A)
    assert stored is not None and stored.impressions == 100

    analytics = factory.create_analytics_repository()
    for level, entity_id in (("campaign", a.campaign.id), ("group", a.group.id), ("ad", a.ad.id)):
        assert (
            await analytics.summary(level, entity_id, user_id=B, start_date=DAY, end_date=DAY)
            is None
        )
        mine = await analytics.summary(level, entity_id, user_id=A, start_date=DAY, end_date=DAY)
        assert mine is not None and mine.totals.impressions == 100
        assert await analytics.summaries(level, user_id=B, start_date=DAY, end_date=DAY) == []
        assert await analytics.top(level, "ctr", user_id=B, start_date=DAY, end_date=DAY) == []
    series = await analytics.daily_series(user_id=B, start_date=DAY, end_date=DAY, ad_id=a.ad.id)
    assert series[0].totals.impressions == 0
    stats = await factory.create_ads_repository().get_user_stats(user_id=B)
    assert stats.spend_micros == 0 and stats.total_ads == 1
