"""Validation of entities and of changes to them, before any SQL runs.

Each check raises :class:`~ads_infra.domain.errors.ValidationError` naming
the field and what to do. ``validate_*`` also normalizes in place (an enum
given as its string value becomes the enum) and returns the entity.

Whether a foreign id (``campaign_id`` of an ad, ...) belongs to the same user
needs a lookup: repositories check it with the same error type.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    AdType,
    BidStrategy,
    Campaign,
    Objective,
    OptimizationSuggestion,
    PerformanceRecord,
    Status,
    SuggestionStatus,
    SuggestionType,
)
from ads_infra.domain.errors import ValidationError

__all__ = [
    "CONVERSIONS_PRECISION",
    "CONVERSIONS_QUANTUM",
    "CONVERSIONS_SCALE",
    "MAX_CONVERSIONS",
    "MAX_COUNT",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_HEADLINE_LENGTH",
    "MAX_JSON_DEPTH",
    "MAX_JSON_VALUES",
    "MAX_NAME_LENGTH",
    "MAX_URL_LENGTH",
    "UPDATABLE_FIELDS",
    "apply_changes",
    "check_date",
    "check_text",
    "validate",
    "validate_ad",
    "validate_campaign",
    "validate_group",
    "validate_performance_record",
    "validate_suggestion",
]

MAX_NAME_LENGTH = 255
MAX_HEADLINE_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 5000
MAX_URL_LENGTH = 2048
MAX_KEY_LENGTH = 1024
MAX_MONEY_MICROS = 10**15  # a billion units: beyond that it is a typo, not a budget
MAX_COUNT = 2**63 - 1  # ids and counts are BIGINT columns
MAX_JSON_VALUES = 10_000  # in one JSON column (targeting, metadata, payload, ...)
MAX_JSON_DEPTH = 32
# performance_daily.conversions is NUMERIC(18, 4) (ads_infra.tables; a test
# keeps the two equal). More decimals would be rounded by the database, and
# differently per backend, so they are refused instead.
CONVERSIONS_PRECISION = 18
CONVERSIONS_SCALE = 4
CONVERSIONS_QUANTUM = Decimal(1).scaleb(-CONVERSIONS_SCALE)
# On SQLite the column holds a double, exact to 15 significant digits: with 4
# decimals that leaves 11 integer digits (PostgreSQL's column holds 14), the
# bound under which both backends store the same value.
DOUBLE_DIGITS = 15
MAX_CONVERSIONS = Decimal(10) ** (min(CONVERSIONS_PRECISION, DOUBLE_DIGITS) - CONVERSIONS_SCALE)

EnumT = TypeVar("EnumT", bound=enum.Enum)
T = TypeVar("T")


def _enum(entity: str, field: str, cls: type[EnumT], value: object) -> EnumT:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cls)
        raise ValidationError(
            field, f"unknown value {value!r}; use one of: {allowed}", entity=entity
        ) from None


def _id(entity: str, field: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValidationError(field, f"must be a positive integer id, got {value!r}", entity=entity)
    if value > MAX_COUNT:
        raise ValidationError(
            field, f"{value} is more than the largest id, {MAX_COUNT}", entity=entity
        )


def check_text(field: str, value: str, *, entity: str | None = None) -> None:
    """ValidationError unless ``value`` is text every backend stores as given.

    PostgreSQL refuses a NUL character in text and JSON, and a lone surrogate
    is not valid Unicode (it cannot be encoded as UTF-8): both would reach the
    database only to fail there.
    """
    if "\x00" in value:
        raise ValidationError(
            field, "holds a NUL character (\\x00), which cannot be stored; remove it",
            entity=entity,
        )  # fmt: skip
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            field, "holds an unpaired surrogate, which is not valid Unicode; send UTF-8 text",
            entity=entity,
        ) from None  # fmt: skip


def _text(entity: str, field: str, value: object, max_length: int, *, required: bool) -> None:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be text, got {type(value).__name__}", entity=entity)
    check_text(field, value, entity=entity)
    if required and not value.strip():
        raise ValidationError(field, "must not be empty", entity=entity)
    if len(value) > max_length:
        raise ValidationError(
            field,
            f"is {len(value)} characters long; shorten it to at most {max_length}",
            entity=entity,
        )


def _money(entity: str, field: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(
            field,
            f"must be an integer amount in micros (1 unit = 1,000,000), got {value!r}",
            entity=entity,
        )
    if value < 0:
        raise ValidationError(field, f"must not be negative, got {value}", entity=entity)
    if value > MAX_MONEY_MICROS:
        raise ValidationError(field, f"{value} micros is implausibly large", entity=entity)


def _count(entity: str, field: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(
            field, f"must be a non-negative integer, got {value!r}", entity=entity
        )
    if value > MAX_COUNT:
        raise ValidationError(
            field, f"{value} is more than the largest storable count, {MAX_COUNT}", entity=entity
        )


def _conversions(entity: str, value: object) -> Decimal:
    """``value`` as a Decimal the conversions column stores exactly, on either backend."""
    field = "conversions"
    if not isinstance(value, Decimal):
        try:
            value = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise ValidationError(
                field, f"must be a number, got {value!r}", entity=entity
            ) from None
    if not value.is_finite() or value < 0:
        raise ValidationError(field, f"must be a non-negative number, got {value}", entity=entity)
    if value >= MAX_CONVERSIONS:
        raise ValidationError(
            field,
            f"{value} is too large; every backend stores up to "
            f"{MAX_CONVERSIONS - CONVERSIONS_QUANTUM:,} exactly",
            entity=entity,
        )
    if value != value.quantize(CONVERSIONS_QUANTUM):
        raise ValidationError(
            field,
            f"{value} has more than {CONVERSIONS_SCALE} decimal places; round it first, "
            f"e.g. value.quantize(Decimal({str(CONVERSIONS_QUANTUM)!r}))",
            entity=entity,
        )
    return value


def _url(entity: str, field: str, value: object) -> None:
    if value is None:
        return
    _text(entity, field, value, MAX_URL_LENGTH, required=True)
    assert isinstance(value, str)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(
            field, f"{value[:80]!r} is not an http(s) URL; use https://example.com/...",
            entity=entity,
        )  # fmt: skip


def _json_object(entity: str, field: str, value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            field, f"must be a JSON object (dict), got {type(value).__name__}", entity=entity
        )
    _json_value(entity, field, value)


def _json_value(entity: str, field: str, root: object) -> None:
    """Every key and value storable as JSON on both backends, and the whole bounded."""
    budget = MAX_JSON_VALUES
    stack: list[tuple[object, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > MAX_JSON_DEPTH:
            raise ValidationError(
                field,
                f"is too large (over {MAX_JSON_VALUES} values or {MAX_JSON_DEPTH} levels deep)",
                entity=entity,
            )
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValidationError(
                        field, f"has a key that is not text: {key!r}", entity=entity
                    )
                check_text(field, key, entity=entity)
                stack.append((item, depth + 1))
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            check_text(field, value, entity=entity)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(field, f"holds {value!r}, which JSON cannot store", entity=entity)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_COUNT:
            raise ValidationError(field, f"holds a number beyond {MAX_COUNT}", entity=entity)
        elif value is not None and not isinstance(value, bool | int | float):
            raise ValidationError(
                field, f"holds a {type(value).__name__}, which is not JSON", entity=entity
            )


def check_date(field: str, value: object, *, entity: str | None = None) -> None:
    """ValidationError unless ``value`` is a date; a datetime (a date subclass) is refused too.

    A datetime compares with a date column differently per backend (SQLite
    compares the text), so it would select different rows.
    """
    if isinstance(value, dt.datetime):
        raise ValidationError(
            field, f"must be a date, not a datetime ({value!r}); pass its .date()", entity=entity
        )
    if not isinstance(value, dt.date):
        raise ValidationError(field, f"must be a date, got {value!r}", entity=entity)


def _date(entity: str, field: str, value: object, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    check_date(field, value, entity=entity)


def validate_campaign(c: Campaign) -> Campaign:
    e = "campaign"
    _id(e, "user_id", c.user_id)
    _id(e, "id", c.id, optional=True)
    _text(e, "name", c.name, MAX_NAME_LENGTH, required=True)
    c.objective = _enum(e, "objective", Objective, c.objective)
    c.status = _enum(e, "status", Status, c.status)
    _money(e, "daily_budget_micros", c.daily_budget_micros)
    _money(e, "total_budget_micros", c.total_budget_micros, optional=True)
    if not isinstance(c.currency, str) or len(c.currency) != 3 or not c.currency.isalpha():
        raise ValidationError(
            "currency", f"{c.currency!r} is not an ISO 4217 code like USD", entity=e
        )
    c.currency = c.currency.upper()
    _date(e, "start_date", c.start_date)
    _date(e, "end_date", c.end_date)
    if c.start_date and c.end_date and c.end_date < c.start_date:
        raise ValidationError(
            "end_date",
            f"{c.end_date} is before start_date {c.start_date}; end on or after the start",
            entity=e,
        )
    if (
        c.total_budget_micros is not None
        and c.daily_budget_micros
        and c.total_budget_micros < c.daily_budget_micros
    ):
        raise ValidationError(
            "total_budget_micros", "is smaller than daily_budget_micros", entity=e
        )
    return c


def validate_group(g: AdGroup) -> AdGroup:
    e = "ad_group"
    _id(e, "user_id", g.user_id)
    _id(e, "id", g.id, optional=True)
    _id(e, "campaign_id", g.campaign_id)
    _text(e, "name", g.name, MAX_NAME_LENGTH, required=True)
    g.status = _enum(e, "status", Status, g.status)
    g.bid_strategy = _enum(e, "bid_strategy", BidStrategy, g.bid_strategy)
    _money(e, "bid_amount_micros", g.bid_amount_micros, optional=True)
    _json_object(e, "targeting", g.targeting)
    return g


def validate_ad(a: Ad) -> Ad:
    e = "ad"
    _id(e, "user_id", a.user_id)
    _id(e, "id", a.id, optional=True)
    _id(e, "campaign_id", a.campaign_id)
    _id(e, "group_id", a.group_id)
    _text(e, "name", a.name, MAX_NAME_LENGTH, required=True)
    a.ad_type = _enum(e, "ad_type", AdType, a.ad_type)
    a.status = _enum(e, "status", Status, a.status)
    _text(e, "headline", a.headline, MAX_HEADLINE_LENGTH, required=False)
    _text(e, "description", a.description, MAX_DESCRIPTION_LENGTH, required=False)
    _url(e, "final_url", a.final_url)
    if a.creative_key is not None:
        _text(e, "creative_key", a.creative_key, MAX_KEY_LENGTH, required=True)
    _json_object(e, "metadata", a.metadata)
    return a


def validate_performance_record(r: PerformanceRecord) -> PerformanceRecord:
    e = "performance"
    _id(e, "ad_id", r.ad_id)
    _id(e, "user_id", r.user_id, optional=True)
    _id(e, "campaign_id", r.campaign_id, optional=True)
    _id(e, "group_id", r.group_id, optional=True)
    _date(e, "date", r.date, optional=False)
    _count(e, "impressions", r.impressions)
    _count(e, "clicks", r.clicks)
    r.conversions = _conversions(e, r.conversions)
    _money(e, "cost_micros", r.cost_micros)
    _money(e, "conversion_value_micros", r.conversion_value_micros)
    if r.clicks > r.impressions:
        raise ValidationError(
            "clicks", f"{r.clicks} clicks exceed {r.impressions} impressions", entity=e
        )
    return r


def validate_suggestion(s: OptimizationSuggestion) -> OptimizationSuggestion:
    e = "suggestion"
    _id(e, "user_id", s.user_id)
    _id(e, "id", s.id, optional=True)
    _id(e, "campaign_id", s.campaign_id)
    _id(e, "group_id", s.group_id, optional=True)
    _id(e, "ad_id", s.ad_id, optional=True)
    s.type = _enum(e, "type", SuggestionType, s.type)
    s.status = _enum(e, "status", SuggestionStatus, s.status)
    _text(e, "title", s.title, MAX_NAME_LENGTH, required=False)
    for name in ("payload", "evidence", "expected_impact"):
        _json_object(e, name, getattr(s, name))
    if (
        not isinstance(s.score, int | float)
        or isinstance(s.score, bool)
        or not math.isfinite(s.score)
    ):
        raise ValidationError("score", f"must be a finite number, got {s.score!r}", entity=e)
    s.score = float(s.score)
    return s


_VALIDATORS: dict[type, Any] = {
    Campaign: validate_campaign,
    AdGroup: validate_group,
    Ad: validate_ad,
    PerformanceRecord: validate_performance_record,
    OptimizationSuggestion: validate_suggestion,
}


def validate(entity: T) -> T:
    """Validate any entity with its own validator."""
    result: T = _VALIDATORS[type(entity)](entity)
    return result


# Fields a caller may change with ``update``; ids, owner and timestamps are not among them.
UPDATABLE_FIELDS: dict[type, frozenset[str]] = {
    Campaign: frozenset(
        {
            "name",
            "objective",
            "status",
            "daily_budget_micros",
            "total_budget_micros",
            "currency",
            "start_date",
            "end_date",
        }
    ),
    AdGroup: frozenset({"name", "status", "targeting", "bid_strategy", "bid_amount_micros"}),
    Ad: frozenset(
        {
            "name",
            "ad_type",
            "status",
            "headline",
            "description",
            "final_url",
            "creative_key",
            "metadata",
        }
    ),
    OptimizationSuggestion: frozenset({"title", "payload", "evidence", "expected_impact", "score"}),
}


def apply_changes(entity: T, changes: Mapping[str, Any]) -> T:
    """A validated copy of ``entity`` with ``changes`` applied.

    A field that does not exist or may not change (``id``, ``user_id``,
    timestamps) is a ValidationError naming it.
    """
    allowed = UPDATABLE_FIELDS.get(type(entity), frozenset())
    name = type(entity).__name__
    for field in changes:
        if field not in allowed:
            raise ValidationError(
                field,
                f"cannot be changed by update; changeable fields: {', '.join(sorted(allowed))}",
                entity=name,
            )
    updated = dataclasses.replace(entity, **dict(changes))  # type: ignore[type-var]
    return validate(updated)
