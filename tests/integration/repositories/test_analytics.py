"""Summaries, daily series and top N, with derived metrics computed from sums."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ads_infra.domain.entities import Ad, PerformanceRecord
from ads_infra.domain.errors import ValidationError
from ads_infra.repositories import RepositoryFactory
from tests.integration.repositories.conftest import make_tree

USER = 5
D1, D2, D3 = dt.date(2024, 4, 1), dt.date(2024, 4, 2), dt.date(2024, 4, 3)


@pytest.fixture
async def data(factory: RepositoryFactory) -> dict[str, int]:
    """Campaign X: ad x1 (2 days) and ad x2 (1 day, no clicks); campaign Y: ad y1 with no cost."""
    x, y = await make_tree(factory, USER, "x"), await make_tree(factory, USER, "y")
    assert x.campaign.id and x.group.id and x.ad.id and y.ad.id
    x2 = await factory.create_ads_repository().create(
        Ad(user_id=USER, campaign_id=x.campaign.id, group_id=x.group.id, name="x2")
    )
    assert x2.id
    await factory.create_performance_repository().bulk_upsert(
        [
            PerformanceRecord(ad_id=x.ad.id, date=D1, impressions=1000, clicks=40,
                              conversions=Decimal(2), cost_micros=20_000_000,
                              conversion_value_micros=60_000_000),
            PerformanceRecord(ad_id=x.ad.id, date=D3, impressions=3000, clicks=20,
                              conversions=Decimal("1.5"), cost_micros=10_000_000,
                              conversion_value_micros=15_000_000),
            PerformanceRecord(ad_id=x2.id, date=D1, impressions=500, clicks=0, cost_micros=0),
            PerformanceRecord(ad_id=y.ad.id, date=D2, impressions=200, clicks=10, cost_micros=0),
        ],
        user_id=USER,
    )  # fmt: skip
    return {"x": x.campaign.id, "y": y.campaign.id or 0, "x1": x.ad.id, "x2": x2.id,
            "y1": y.ad.id, "gx": x.group.id}  # fmt: skip


async def test_campaign_summaries_match_hand_computed_metrics(
    factory: RepositoryFactory, data: dict[str, int]
) -> None:
    analytics = factory.create_analytics_repository()
    summaries = await analytics.summaries("campaign", user_id=USER, start_date=D1, end_date=D3)
    by_id = {s.id: s for s in summaries}
    x = by_id[data["x"]].totals
    assert (x.impressions, x.clicks, x.conversions, x.cost_micros, x.conversion_value_micros) == (
        4500, 60, Decimal("3.5"), 30_000_000, 75_000_000)  # fmt: skip
    m = x.metrics
    assert m.ctr == pytest.approx(60 / 4500)
    assert m.cpc_micros == pytest.approx(30_000_000 / 60)
    assert m.cpm_micros == pytest.approx(30_000_000 / 4500 * 1000)
    assert m.cpa_micros == pytest.approx(30_000_000 / 3.5)
    assert m.roas == pytest.approx(2.5)
    assert m.conversion_rate == pytest.approx(3.5 / 60)
    y = by_id[data["y"]].totals.metrics  # clicks but no cost and no conversions
    assert y.roas is None and y.cpa_micros is None and y.conversion_rate == 0.0
    assert y.cpc_micros == 0.0 and y.ctr == pytest.approx(10 / 200)
    assert by_id[data["x"]].to_dict()["conversions"] == "3.5000"


async def test_ad_and_group_levels_and_date_range(
    factory: RepositoryFactory, data: dict[str, int]
) -> None:
    analytics = factory.create_analytics_repository()
    ads = await analytics.summaries(
        "ad", user_id=USER, start_date=D1, end_date=D1, campaign_id=data["x"]
    )
    assert {s.id: s.totals.impressions for s in ads} == {data["x1"]: 1000, data["x2"]: 500}
    x2 = next(s for s in ads if s.id == data["x2"]).totals.metrics
    assert (
        x2.ctr == 0.0 and x2.cpc_micros is None and x2.roas is None and x2.conversion_rate is None
    )
    groups = await analytics.summaries("group", user_id=USER, start_date=D1, end_date=D3)
    assert {s.id: s.totals.clicks for s in groups}[data["gx"]] == 60
    one = await analytics.summary("ad", data["x1"], user_id=USER, start_date=D2, end_date=D2)
    assert one is not None and one.totals.impressions == 0 and one.totals.metrics.ctr is None


async def test_daily_series_fills_missing_days(
    factory: RepositoryFactory, data: dict[str, int]
) -> None:
    analytics = factory.create_analytics_repository()
    series = await analytics.daily_series(
        user_id=USER, start_date=D1, end_date=D3, campaign_id=data["x"]
    )
    assert [p.date for p in series] == [D1, D2, D3]
    assert [p.totals.impressions for p in series] == [1500, 0, 3000]
    assert series[1].totals.metrics.ctr is None
    assert series[0].totals.metrics.ctr == pytest.approx(40 / 1500)


async def test_top_n_by_a_metric(factory: RepositoryFactory, data: dict[str, int]) -> None:
    analytics = factory.create_analytics_repository()
    kw = {"user_id": USER, "start_date": D1, "end_date": D3}
    by_ctr = await analytics.top("ad", "ctr", **kw)  # type: ignore[arg-type]
    # y1 10/200 = 0.05, x1 60/4000 = 0.015, x2 0/500 = 0
    assert [s.id for s in by_ctr] == [data["y1"], data["x1"], data["x2"]]
    by_roas = await analytics.top("ad", "roas", n=3, **kw)  # type: ignore[arg-type]
    assert by_roas[0].id == data["x1"]  # the others have no cost: None ranks last
    cheapest = await analytics.top("ad", "cpc_micros", n=1, descending=False, **kw)  # type: ignore[arg-type]
    assert [s.id for s in cheapest] == [data["y1"]]  # 0 cost per click
    spend = await analytics.top("campaign", "cost_micros", n=1, **kw)  # type: ignore[arg-type]
    assert [s.id for s in spend] == [data["x"]]


async def test_bad_arguments_name_the_field(factory: RepositoryFactory) -> None:
    analytics = factory.create_analytics_repository()
    with pytest.raises(ValidationError) as exc:
        await analytics.summaries("planet", user_id=USER, start_date=D1, end_date=D2)
    assert exc.value.field == "level"
    with pytest.raises(ValidationError) as exc:
        await analytics.summaries("ad", user_id=USER, start_date=D2, end_date=D1)
    assert exc.value.field == "end_date"
    with pytest.raises(ValidationError) as exc:
        await analytics.top("ad", "vibes", user_id=USER, start_date=D1, end_date=D2)
    assert exc.value.field == "metric"
    with pytest.raises(ValidationError, match="not a datetime") as exc:
        start = dt.datetime.combine(D1, dt.time())
        await analytics.summaries("ad", user_id=USER, start_date=start, end_date=D2)
    assert exc.value.field == "start_date"


async def test_user_stats(factory: RepositoryFactory, data: dict[str, int]) -> None:
    stats = await factory.create_ads_repository().get_user_stats(user_id=USER)
    assert stats.ads_by_status == {"draft": 3} and stats.campaigns_by_status == {"draft": 2}
    assert stats.spend_micros == 30_000_000
    assert stats.totals.metrics.roas == pytest.approx(2.5)
    assert stats.to_dict()["totals"]["clicks"] == 70
