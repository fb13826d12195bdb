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
from ads_infra.domain.validation import MAX_NAME_LENGTH, MAX_URL_LENGTH, apply_changes, validate
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
