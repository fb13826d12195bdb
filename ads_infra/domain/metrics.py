"""Derived metrics: always computed from sums, None where the denominator is 0.

- CTR = clicks / impressions
- CPC = cost / clicks                 (micros)
- CPM = cost / impressions x 1000     (micros)
- CPA = cost / conversions            (micros)
- ROAS = conversion_value / cost
- conversion rate = conversions / clicks

Ratios are floats (they are reported, never summed again); averaging
per-day ratios would weight a quiet day like a busy one, so callers sum
first (:class:`MetricTotals` is additive) and derive last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ads_infra.domain.entities import PerformanceRecord

__all__ = [
    "DerivedMetrics",
    "MetricTotals",
    "conversion_rate",
    "cpa_micros",
    "cpc_micros",
    "cpm_micros",
    "ctr",
    "derive",
    "roas",
    "safe_ratio",
]

Number = int | float | Decimal


def safe_ratio(numerator: Number, denominator: Number) -> float | None:
    """numerator / denominator as float, None when the denominator is 0."""
    if not denominator:
        return None
    return float(Decimal(numerator) / Decimal(denominator))


def ctr(clicks: int, impressions: int) -> float | None:
    return safe_ratio(clicks, impressions)


def cpc_micros(cost_micros: int, clicks: int) -> float | None:
    return safe_ratio(cost_micros, clicks)


def cpm_micros(cost_micros: int, impressions: int) -> float | None:
    return safe_ratio(Decimal(cost_micros) * 1000, impressions)


def cpa_micros(cost_micros: int, conversions: Number) -> float | None:
    return safe_ratio(cost_micros, conversions)


def roas(conversion_value_micros: int, cost_micros: int) -> float | None:
    return safe_ratio(conversion_value_micros, cost_micros)


def conversion_rate(conversions: Number, clicks: int) -> float | None:
    return safe_ratio(conversions, clicks)


@dataclasses.dataclass(frozen=True)
class DerivedMetrics:
    ctr: float | None
    cpc_micros: float | None
    cpm_micros: float | None
    cpa_micros: float | None
    roas: float | None
    conversion_rate: float | None

    def to_dict(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)


def derive(
    impressions: int,
    clicks: int,
    conversions: Number,
    cost_micros: int,
    conversion_value_micros: int,
) -> DerivedMetrics:
    """All six derived metrics from sums."""
    return DerivedMetrics(
        ctr=ctr(clicks, impressions),
        cpc_micros=cpc_micros(cost_micros, clicks),
        cpm_micros=cpm_micros(cost_micros, impressions),
        cpa_micros=cpa_micros(cost_micros, conversions),
        roas=roas(conversion_value_micros, cost_micros),
        conversion_rate=conversion_rate(conversions, clicks),
    )


@dataclasses.dataclass(frozen=True)
class MetricTotals:
    """Additive sums of performance; ``metrics`` derives the ratios from them."""

    impressions: int = 0
    clicks: int = 0
    conversions: Decimal = Decimal(0)
    cost_micros: int = 0
    conversion_value_micros: int = 0

    def __add__(self, other: MetricTotals) -> MetricTotals:
        return MetricTotals(
            self.impressions + other.impressions,
            self.clicks + other.clicks,
            self.conversions + other.conversions,
            self.cost_micros + other.cost_micros,
            self.conversion_value_micros + other.conversion_value_micros,
        )

    @classmethod
    def of(cls, records: Iterable[PerformanceRecord]) -> MetricTotals:
        total = cls()
        for r in records:
            total += cls(
                r.impressions, r.clicks, Decimal(r.conversions), r.cost_micros,
                r.conversion_value_micros,
            )  # fmt: skip
        return total

    @property
    def metrics(self) -> DerivedMetrics:
        return derive(
            self.impressions, self.clicks, self.conversions, self.cost_micros,
            self.conversion_value_micros,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Sums and derived metrics, JSON-safe (conversions as a string)."""
        return {
            "impressions": self.impressions,
            "clicks": self.clicks,
            "conversions": str(self.conversions),
            "cost_micros": self.cost_micros,
            "conversion_value_micros": self.conversion_value_micros,
            **self.metrics.to_dict(),
        }
