"""Validation in the domain: each bad input is a clear error naming the field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    Campaign,
    Objective,
    OptimizationSuggestion,
    PerformanceRecord,
    Status,
)
from ads_infra.domain.errors import ValidationError
from ads_infra.domain.validation import (
    CONVERSIONS_PRECISION,
    CONVERSIONS_SCALE,
    MAX_CONVERSIONS,
    MAX_NAME_LENGTH,
    MAX_URL_LENGTH,
    apply_changes,
    check_date,
    validate,
)
from ads_infra.errors import ValidationError as InfraValidationError


def campaign(**kw: object) -> Campaign:
    return Campaign(**{"user_id": 1, "name": "Spring sale", **kw})  # type: ignore[arg-type]


def ad(**kw: object) -> Ad:
    return Ad(**{"user_id": 1, "campaign_id": 1, "group_id": 1, "name": "Ad", **kw})  # type: ignore[arg-type]


def field_of(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return exc.value.field


@pytest.mark.parametrize(
    ("entity", "field"),
    [
        (campaign(daily_budget_micros=-1), "daily_budget_micros"),
        (campaign(total_budget_micros=-5), "total_budget_micros"),
        (campaign(daily_budget_micros=1.5), "daily_budget_micros"),
        (campaign(start_date=dt.date(2024, 2, 1), end_date=dt.date(2024, 1, 31)), "end_date"),
        (campaign(status="running"), "status"),
        (campaign(objective="fame"), "objective"),
        (campaign(name="x" * (MAX_NAME_LENGTH + 1)), "name"),
        (campaign(name="   "), "name"),
        (campaign(currency="dollars"), "currency"),
        (campaign(user_id=0), "user_id"),
        (ad(final_url="ftp://example.com/x"), "final_url"),
        (ad(final_url="https://example.com/" + "a" * MAX_URL_LENGTH), "final_url"),
        (ad(ad_type="hologram"), "ad_type"),
        (ad(metadata=[1, 2]), "metadata"),
        (ad(group_id=None), "group_id"),
        (AdGroup(user_id=1, campaign_id=1, name="G", bid_amount_micros=-10), "bid_amount_micros"),
        (AdGroup(user_id=1, campaign_id=1, name="G", bid_strategy="guess"), "bid_strategy"),
        (PerformanceRecord(ad_id=1, date=dt.date(2024, 1, 1), cost_micros=-1), "cost_micros"),
        (
            PerformanceRecord(ad_id=1, date=dt.date(2024, 1, 1), conversions=Decimal(-1)),
            "conversions",
        ),
        (PerformanceRecord(ad_id=1, date=dt.date(2024, 1, 1), impressions=1, clicks=2), "clicks"),
        (OptimizationSuggestion(user_id=1, campaign_id=1, type="magic"), "type"),  # type: ignore[arg-type]
        (
            OptimizationSuggestion(user_id=1, campaign_id=1, type="budget", score=float("nan")),
            "score",
        ),  # type: ignore[arg-type]
        (
            OptimizationSuggestion(user_id=1, campaign_id=1, type="budget", score=float("-inf")),
            "score",
        ),  # type: ignore[arg-type]
    ],
)
def test_bad_input_names_the_field(entity: object, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate(entity)
    assert exc.value.field == field
    assert field in str(exc.value)


def test_unknown_enum_lists_the_allowed_values() -> None:
    with pytest.raises(ValidationError, match="draft, active, paused, archived"):
        validate(campaign(status="running"))


def test_validation_error_is_a_value_error_and_reexported() -> None:
    assert issubclass(ValidationError, ValueError)
    assert InfraValidationError is ValidationError


def test_strings_become_enums_and_currency_is_upper_cased() -> None:
    c = validate(campaign(status="active", objective="sales", currency="eur"))
    assert c.status is Status.ACTIVE and c.objective is Objective.SALES
    assert c.currency == "EUR"


def test_valid_entities_pass() -> None:
    validate(campaign(daily_budget_micros=50_000_000, start_date=dt.date(2024, 1, 1),
                      end_date=dt.date(2024, 1, 1)))  # fmt: skip
    validate(ad(final_url="https://example.com/landing?x=1", metadata={"k": [1]}))
    validate(PerformanceRecord(ad_id=1, date=dt.date(2024, 1, 1), conversions="2.5"))  # type: ignore[arg-type]


def test_apply_changes_returns_a_validated_copy() -> None:
    original = campaign(daily_budget_micros=10)
    updated = apply_changes(original, {"status": "paused", "daily_budget_micros": 20})
    assert updated.status is Status.PAUSED and updated.daily_budget_micros == 20
    assert original.daily_budget_micros == 10


@pytest.mark.parametrize("field", ["id", "user_id", "created_at", "nonsense"])
def test_apply_changes_refuses_fields_that_cannot_change(field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        apply_changes(campaign(), {field: 2})
    assert exc.value.field == field


def test_apply_changes_validates_the_result() -> None:
    c = campaign(start_date=dt.date(2024, 3, 1))
    with pytest.raises(ValidationError) as exc:
        apply_changes(c, {"end_date": dt.date(2024, 2, 1)})
    assert exc.value.field == "end_date"


def perf(**kw: object) -> PerformanceRecord:
    return PerformanceRecord(**{"ad_id": 1, "date": dt.date(2024, 1, 1), **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        # Each backend would round these differently (PostgreSQL 0.0002, SQLite 0.0001).
        (perf(conversions=Decimal("0.00015")), "conversions", "more than 4 decimal places"),
        (perf(conversions=Decimal("1.23456789")), "conversions", "more than 4 decimal places"),
        (perf(conversions=Decimal("1e-30")), "conversions", "more than 4 decimal places"),
        (perf(conversions=Decimal("1e15")), "conversions", "too large"),
        (perf(conversions=MAX_CONVERSIONS), "conversions", "too large"),
        (perf(impressions=2**63), "impressions", "largest storable count"),
        (perf(impressions=2**63 - 1, clicks=2**63), "clicks", "largest storable count"),
        (perf(ad_id=2**63), "ad_id", "largest id"),
        (perf(cost_micros=2**63), "cost_micros", "implausibly large"),
    ],
)
def test_performance_values_the_columns_cannot_hold_exactly_are_refused(
    record: PerformanceRecord, field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        validate(record)
    assert exc.value.field == field and reason in str(exc.value)


@pytest.mark.parametrize("conversions", ["0.0001", "1.50000", "99999999999.9999", "1e3", 3, 2.5])
def test_conversions_the_column_holds_exactly_pass(conversions: object) -> None:
    record = validate(perf(impressions=2**63 - 1, conversions=conversions))
    assert record.conversions == Decimal(str(conversions))


def test_the_conversions_bounds_are_those_of_the_column() -> None:
    from sqlalchemy import Numeric

    from ads_infra.database.tables import performance_daily

    column = performance_daily.c.conversions.type
    assert isinstance(column, Numeric)
    assert (column.precision, column.scale) == (CONVERSIONS_PRECISION, CONVERSIONS_SCALE)
    column_limit = Decimal(10) ** (CONVERSIONS_PRECISION - CONVERSIONS_SCALE)
    assert column_limit >= MAX_CONVERSIONS


def test_a_datetime_where_a_date_is_expected_is_refused_by_name() -> None:
    moment = dt.datetime(2024, 1, 5, 12, 0)
    with pytest.raises(ValidationError, match=r"not a datetime .*\.date\(\)") as exc:
        check_date("start_date", moment)
    assert exc.value.field == "start_date"
    with pytest.raises(ValidationError) as exc:
        validate(perf(date=moment))
    assert exc.value.field == "date"
    check_date("start_date", dt.date(2024, 1, 5))
