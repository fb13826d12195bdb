"""Entities of the ads domain: plain dataclasses, no I/O.

Money is integer micros (1 currency unit = 1,000,000 micros), never float.
Ids are integers assigned by the database: a new entity has ``id=None``.
Every entity belongs to a user (``user_id``).

Each entity converts to and from a JSON-safe dict (:func:`to_json_dict`,
:func:`from_json_dict`): dates and datetimes as ISO strings, decimals as
strings, enums as their value; the cache stores that form.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

__all__ = [
    "Ad",
    "AdGroup",
    "AdType",
    "BidStrategy",
    "Campaign",
    "Entity",
    "Objective",
    "OptimizationSuggestion",
    "PerformanceRecord",
    "Status",
    "SuggestionStatus",
    "SuggestionType",
    "from_json_dict",
    "to_json_dict",
    "utcnow",
]

MICROS_PER_UNIT = 1_000_000


def utcnow() -> dt.datetime:
    """Aware UTC now, the only clock the domain uses."""
    return dt.datetime.now(dt.UTC)


class Status(enum.StrEnum):
    """Lifecycle of a campaign, an ad group or an ad."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Objective(enum.StrEnum):
    """What a campaign optimizes for."""

    AWARENESS = "awareness"
    TRAFFIC = "traffic"
    ENGAGEMENT = "engagement"
    LEADS = "leads"
    APP_PROMOTION = "app_promotion"
    SALES = "sales"


class AdType(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    CAROUSEL = "carousel"
    RESPONSIVE = "responsive"


class BidStrategy(enum.StrEnum):
    MANUAL_CPC = "manual_cpc"
    MAXIMIZE_CLICKS = "maximize_clicks"
    MAXIMIZE_CONVERSIONS = "maximize_conversions"
    TARGET_CPA = "target_cpa"
    TARGET_ROAS = "target_roas"


class SuggestionType(enum.StrEnum):
    BUDGET = "budget"
    BID = "bid"
    TARGETING = "targeting"
    CREATIVE = "creative"
    PAUSE = "pause"


class SuggestionStatus(enum.StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    DISMISSED = "dismissed"


@dataclasses.dataclass(kw_only=True)
class Campaign:
    user_id: int
    name: str
    objective: Objective = Objective.TRAFFIC
    status: Status = Status.DRAFT
    daily_budget_micros: int = 0
    total_budget_micros: int | None = None
    currency: str = "USD"
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    id: int | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclasses.dataclass(kw_only=True)
class AdGroup:
    user_id: int
    campaign_id: int
    name: str
    status: Status = Status.DRAFT
    targeting: dict[str, Any] = dataclasses.field(default_factory=dict)
    bid_strategy: BidStrategy = BidStrategy.MANUAL_CPC
    bid_amount_micros: int | None = None
    id: int | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclasses.dataclass(kw_only=True)
class Ad:
    user_id: int
    campaign_id: int
    group_id: int
    name: str
    ad_type: AdType = AdType.TEXT
    status: Status = Status.DRAFT
    headline: str = ""
    description: str = ""
    final_url: str | None = None
    creative_key: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: int | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclasses.dataclass(kw_only=True)
class PerformanceRecord:
    """One ad's totals for one day; the key is (ad_id, date).

    ``campaign_id`` and ``group_id`` are copies of the ad's, kept on the row
    for cheap roll-ups; repositories fill them from the ad (None on input is fine).
    """

    ad_id: int
    date: dt.date
    user_id: int | None = None
    campaign_id: int | None = None
    group_id: int | None = None
    impressions: int = 0
    clicks: int = 0
    conversions: Decimal = Decimal(0)
    cost_micros: int = 0
    conversion_value_micros: int = 0


@dataclasses.dataclass(kw_only=True)
class OptimizationSuggestion:
    """A proposed change with the numbers behind it.

    ``payload`` says what to change (``{"daily_budget_micros": 150_000_000}``),
    ``evidence`` the observations that led to it (metrics, date range),
    ``expected_impact`` what should happen (``{"conversions": "+12%"}``),
    ``score`` how strongly it is recommended (higher first).
    """

    user_id: int
    campaign_id: int
    type: SuggestionType
    group_id: int | None = None
    ad_id: int | None = None
    status: SuggestionStatus = SuggestionStatus.PENDING
    title: str = ""
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    expected_impact: dict[str, Any] = dataclasses.field(default_factory=dict)
    score: float = 0.0
    id: int | None = None
    created_at: dt.datetime | None = None
    applied_at: dt.datetime | None = None
    dismissed_at: dt.datetime | None = None


Entity = Campaign | AdGroup | Ad | PerformanceRecord | OptimizationSuggestion
E = TypeVar("E", Campaign, AdGroup, Ad, PerformanceRecord, OptimizationSuggestion)


# --- JSON-safe form -------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date):  # datetime included
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


# Values of these exact types are JSON as they are (an enum that is also a str is not
# one of them: its type is the enum's).
_AS_IS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def to_json_dict(entity: Entity) -> dict[str, Any]:
    """The entity as a dict of JSON types only (round-trips through :func:`from_json_dict`)."""
    cls = type(entity)
    names = _FIELD_NAMES.get(cls)
    if names is None:  # dataclasses.fields() builds its tuple anew on every call
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(entity))
    out = {}
    for name in names:
        value = getattr(entity, name)
        out[name] = value if type(value) in _AS_IS else _to_json(value)
    return out


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    """What turns a field's JSON value back into its type; None: the value as it is."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _converter(options[0]) if len(options) == 1 else None
    if hint is dt.datetime:
        return dt.datetime.fromisoformat
    if hint is dt.date:
        return dt.date.fromisoformat
    if hint is Decimal:
        return Decimal
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    return None


_CONVERTERS: dict[type, tuple[tuple[str, Callable[[Any], Any] | None], ...]] = {}


def _field_converters(cls: type) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    # Resolving type hints is slow and cached reads rebuild entities on every hit: each
    # field's converter is worked out once per class.
    found = _CONVERTERS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _CONVERTERS[cls] = tuple(
            (f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls)
        )
    return found


def from_json_dict(cls: type[E], data: dict[str, Any]) -> E:
    """Rebuild an entity from :func:`to_json_dict`'s output (unknown keys ignored)."""
    kwargs: dict[str, Any] = {}
    for name, convert in _field_converters(cls):
        if name in data:
            value = data[name]
            kwargs[name] = value if convert is None or value is None else convert(value)
    return cls(**kwargs)
