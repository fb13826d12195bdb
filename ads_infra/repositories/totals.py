"""The five performance sums in SQL, and the MetricTotals a row of them becomes.

Shared by the user statistics (ads) and the roll-ups (analytics), so both
sum the same way and read the sums back the same way on either backend.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func

from ads_infra.database.tables import performance_daily
from ads_infra.domain.metrics import MetricTotals

__all__ = ["CLICKS", "CONVERSIONS", "COST", "IMPRESSIONS", "SUMS", "VALUE", "totals_of"]

_p = performance_daily
# COALESCE: a SUM over no rows is NULL; no data means zero.
IMPRESSIONS = func.coalesce(func.sum(_p.c.impressions), 0)
CLICKS = func.coalesce(func.sum(_p.c.clicks), 0)
CONVERSIONS = func.coalesce(func.sum(_p.c.conversions), 0)
COST = func.coalesce(func.sum(_p.c.cost_micros), 0)
VALUE = func.coalesce(func.sum(_p.c.conversion_value_micros), 0)
# In the order totals_of reads them.
SUMS = (IMPRESSIONS, CLICKS, CONVERSIONS, COST, VALUE)


def totals_of(sums: Any) -> MetricTotals:
    """MetricTotals from a row of five sums (impressions, clicks, conversions, cost, value)."""
    impressions, clicks, conversions, cost, value = sums
    return MetricTotals(
        impressions=int(impressions or 0),
        clicks=int(clicks or 0),
        conversions=_decimal(conversions),
        cost_micros=int(cost or 0),
        conversion_value_micros=int(value or 0),
    )


def _decimal(value: Any) -> Decimal:
    # SQLite sums NUMERIC as float: round back to the column's 4 decimal places.
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.0001"))
    return Decimal(str(value)).quantize(Decimal("0.0001"))
