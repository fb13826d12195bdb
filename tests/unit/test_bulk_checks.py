"""The inline checks of a bulk upsert's records (pure logic: no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ads_infra.domain.entities import PerformanceRecord
from ads_infra.domain.errors import ValidationError
from ads_infra.repositories.performance import _checked

DAY = dt.date(2026, 1, 1)


def _record(conversions: object, ad_id: int = 1) -> PerformanceRecord:
    return PerformanceRecord(ad_id=ad_id, date=DAY, conversions=conversions)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("0.00015"), Decimal(-1)]
)
def test_a_bad_conversions_is_refused_even_after_good_ones(bad: Decimal) -> None:
    # The good values before it are remembered; the bad one must not pass as one of them.
    good = [_record(Decimal("0.0001") * n, ad_id=n) for n in range(1, 50)]
    with pytest.raises(ValidationError) as caught:
        _checked([*good, _record(bad, ad_id=99)], 7, 0)
    assert "conversions" in str(caught.value)


def test_equal_conversions_written_differently_pass_and_keep_their_value() -> None:
    records = [_record(Decimal("2.5"), 1), _record(Decimal("2.5000"), 2), _record(3, 3)]
    rows = _checked(records, 7, 10)
    assert [(row[0], row[1], row[5]) for row in rows.values()] == [
        (10, 1, Decimal("2.5")), (11, 2, Decimal("2.5000")), (12, 3, Decimal(3)),
    ]  # fmt: skip
