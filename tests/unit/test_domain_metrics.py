"""Derived metrics equal hand-computed values; zero denominators give None."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ads_infra.domain.entities import PerformanceRecord
from ads_infra.domain.metrics import MetricTotals, derive, safe_ratio


def test_all_six_metrics_match_hand_computed_values() -> None:
    # 2,000 impressions, 50 clicks, 4 conversions, 25.00 spent, 100.00 of value.
    m = derive(2000, 50, Decimal(4), 25_000_000, 100_000_000)
    assert m.ctr == 0.025  # 50 / 2000
    assert m.cpc_micros == 500_000  # 25.00 / 50 = 0.50
    assert m.cpm_micros == 12_500_000  # 25.00 / 2000 * 1000 = 12.50
    assert m.cpa_micros == 6_250_000  # 25.00 / 4 = 6.25
    assert m.roas == 4.0  # 100 / 25
    assert m.conversion_rate == 0.08  # 4 / 50


def test_fractional_conversions() -> None:
    m = derive(1000, 10, Decimal("2.5"), 5_000_000, 0)
    assert m.cpa_micros == 2_000_000
    assert m.conversion_rate == 0.25
    assert m.roas == 0.0


@pytest.mark.parametrize(
    ("sums", "none_metrics"),
    [
        (
            (0, 0, Decimal(0), 0, 0),
            {"ctr", "cpc_micros", "cpm_micros", "cpa_micros", "roas", "conversion_rate"},
        ),
        ((100, 0, Decimal(0), 1_000_000, 0), {"cpc_micros", "cpa_micros", "conversion_rate"}),
        ((100, 5, Decimal(0), 0, 0), {"cpa_micros", "roas"}),
    ],
)
def test_zero_denominators_give_none(sums: tuple, none_metrics: set[str]) -> None:
    metrics = derive(*sums).to_dict()
    assert {k for k, v in metrics.items() if v is None} == none_metrics


def test_zero_cost_with_conversions_is_cpa_zero_not_none() -> None:
    assert derive(100, 5, Decimal(1), 0, 0).cpa_micros == 0.0


def test_safe_ratio() -> None:
    assert safe_ratio(1, 3) == pytest.approx(1 / 3)
    assert safe_ratio(5, 0) is None
    assert safe_ratio(Decimal("1.5"), 3) == 0.5


def test_totals_are_sums_and_metrics_derive_from_sums_not_from_daily_ratios() -> None:
    day = dt.date(2024, 5, 1)
    records = [
        PerformanceRecord(ad_id=1, date=day, impressions=1000, clicks=10, cost_micros=1_000_000),
        PerformanceRecord(ad_id=2, date=day, impressions=10, clicks=5, cost_micros=0,
                          conversions=Decimal(1), conversion_value_micros=3_000_000),
    ]  # fmt: skip
    totals = MetricTotals.of(records)
    assert totals == MetricTotals(1010, 15, Decimal(1), 1_000_000, 3_000_000)
    # Mean of daily CTRs would be (0.01 + 0.5) / 2 = 0.255; the real CTR is 15 / 1010.
    assert totals.metrics.ctr == pytest.approx(15 / 1010)
    assert totals.metrics.roas == 3.0
    assert MetricTotals() + totals == totals


def test_totals_to_dict_is_json_safe() -> None:
    import json

    data = MetricTotals(10, 1, Decimal("0.5"), 100, 0).to_dict()
    assert json.loads(json.dumps(data))["conversions"] == "0.5"
    assert data["ctr"] == 0.1
    assert data["roas"] == 0.0
