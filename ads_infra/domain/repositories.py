"""Repository interfaces of the ads domain: abstract, standard library only.

Contract shared by all six (the implementations live in
:mod:`ads_infra.repositories`):

- every read, update and delete takes ``user_id``; another user's row is
  "not found", never returned;
- a read of a missing row returns ``None`` (``get_by_id``); a write to a
  missing row (``update``, ``delete``, ``apply``, ``dismiss``) raises
  :class:`~ads_infra.domain.errors.NotFoundError`;
- invalid input raises :class:`~ads_infra.domain.errors.ValidationError`
  naming the field, before anything is written;
- ``list`` returns a :class:`Page`: ordering only from the repository's
  ``ORDERINGS`` (``"-created_at"`` = descending), keyset pagination through
  the opaque ``Page.next_cursor``.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from ads_infra.domain.entities import (
    Ad,
    AdGroup,
    AdType,
    Campaign,
    Objective,
    OptimizationSuggestion,
    PerformanceRecord,
    Status,
    SuggestionStatus,
    SuggestionType,
)
from ads_infra.domain.metrics import MetricTotals

__all__ = [
    "AdFilter",
    "AdsRepository",
    "AnalyticsRepository",
    "CampaignFilter",
    "CampaignRepository",
    "DailyPoint",
    "GroupFilter",
    "GroupRepository",
    "OptimizationRepository",
    "Page",
    "PerformanceFilter",
    "PerformanceRepository",
    "SuggestionFilter",
    "Summary",
    "UserStats",
]

T = TypeVar("T")
E = TypeVar("E")
F = TypeVar("F")


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` back to get the next (None: last page)."""

    items: list[T]
    next_cursor: str | None = None

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CampaignFilter:
    status: Status | None = None
    objective: Objective | None = None
    name_contains: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class GroupFilter:
    campaign_id: int | None = None
    status: Status | None = None
    name_contains: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdFilter:
    campaign_id: int | None = None
    group_id: int | None = None
    status: Status | None = None
    ad_type: AdType | None = None
    name_contains: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PerformanceFilter:
    ad_id: int | None = None
    group_id: int | None = None
    campaign_id: int | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None  # inclusive


@dataclasses.dataclass(frozen=True, kw_only=True)
class SuggestionFilter:
    campaign_id: int | None = None
    status: SuggestionStatus | None = None
    type: SuggestionType | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserStats:
    """What ``get_user_stats`` returns: entity counts by status, spend and derived metrics."""

    user_id: int
    campaigns_by_status: dict[str, int]
    groups_by_status: dict[str, int]
    ads_by_status: dict[str, int]
    totals: MetricTotals

    @property
    def total_ads(self) -> int:
        return sum(self.ads_by_status.values())

    @property
    def spend_micros(self) -> int:
        return self.totals.cost_micros

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "campaigns_by_status": dict(self.campaigns_by_status),
            "groups_by_status": dict(self.groups_by_status),
            "ads_by_status": dict(self.ads_by_status),
            "total_ads": self.total_ads,
            "spend_micros": self.spend_micros,
            "totals": self.totals.to_dict(),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class Summary:
    """Sums and derived metrics of one campaign, group or ad over a date range."""

    level: str  # "campaign" | "group" | "ad"
    id: int
    name: str
    totals: MetricTotals

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "id": self.id, "name": self.name, **self.totals.to_dict()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class DailyPoint:
    date: dt.date
    totals: MetricTotals

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), **self.totals.to_dict()}


class EntityRepository(abc.ABC, Generic[E, F]):
    """CRUD of one user-owned aggregate."""

    ORDERINGS: ClassVar[frozenset[str]] = frozenset({"id"})

    @abc.abstractmethod
    async def create(self, entity: E) -> E:
        """Validate and insert; returns the entity with id and timestamps set."""

    @abc.abstractmethod
    async def get_by_id(self, entity_id: int, *, user_id: int) -> E | None:
        """The entity, or None when it does not exist for this user."""

    @abc.abstractmethod
    async def update(self, entity_id: int, changes: Mapping[str, Any], *, user_id: int) -> E:
        """Apply validated ``changes``; NotFoundError when missing for this user."""

    @abc.abstractmethod
    async def delete(self, entity_id: int, *, user_id: int) -> None:
        """Delete (with everything under it); NotFoundError when missing for this user."""

    @abc.abstractmethod
    async def list(
        self,
        *,
        user_id: int,
        filters: F | None = None,
        order_by: str = "id",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[E]:
        """One page of the user's entities matching ``filters``."""

    @abc.abstractmethod
    async def count(self, *, user_id: int, filters: F | None = None) -> int:
        """How many of the user's entities match ``filters``."""


class CampaignRepository(EntityRepository[Campaign, CampaignFilter]):
    pass


class GroupRepository(EntityRepository[AdGroup, GroupFilter]):
    pass


class AdsRepository(EntityRepository[Ad, AdFilter]):
    @abc.abstractmethod
    async def get_user_stats(self, user_id: int) -> UserStats:
        """Counts by status, spend and derived metrics over all of the user's data."""


class PerformanceRepository(abc.ABC):
    """Daily performance rows, keyed by (ad_id, date)."""

    ORDERINGS: ClassVar[frozenset[str]] = frozenset({"date"})

    @abc.abstractmethod
    async def bulk_upsert(
        self,
        records: Iterable[PerformanceRecord] | AsyncIterable[PerformanceRecord],
        *,
        user_id: int,
    ) -> int:
        """Insert or replace rows by (ad_id, date); returns the number of distinct keys.

        ``records`` may be any iterable or async iterable, read once, in
        bounded memory however long it is.

        Idempotent; within one batch the last record for a key wins. Every
        ``ad_id`` must be one of the user's ads (else NotFoundError, nothing written).
        """

    @abc.abstractmethod
    async def get(self, ad_id: int, day: dt.date, *, user_id: int) -> PerformanceRecord | None:
        """One day of one ad, or None."""

    @abc.abstractmethod
    async def list(
        self,
        *,
        user_id: int,
        filters: PerformanceFilter | None = None,
        order_by: str = "date",
        limit: int = 500,
        cursor: str | None = None,
    ) -> Page[PerformanceRecord]:
        """One page of rows matching ``filters``."""

    @abc.abstractmethod
    async def count(self, *, user_id: int, filters: PerformanceFilter | None = None) -> int:
        """How many rows match."""

    @abc.abstractmethod
    async def delete(self, *, user_id: int, filters: PerformanceFilter | None = None) -> int:
        """Delete matching rows; returns how many."""


class AnalyticsRepository(abc.ABC):
    """Read-only roll-ups of performance with derived metrics computed from sums."""

    METRICS: ClassVar[frozenset[str]] = frozenset(
        {"impressions", "clicks", "conversions", "cost_micros", "conversion_value_micros",
         "ctr", "cpc_micros", "cpm_micros", "cpa_micros", "roas", "conversion_rate"}
    )  # fmt: skip

    @abc.abstractmethod
    async def summaries(
        self,
        level: str,
        *,
        user_id: int,
        start_date: dt.date,
        end_date: dt.date,
        campaign_id: int | None = None,
        group_id: int | None = None,
    ) -> list[Summary]:
        """One Summary per campaign, group or ad (``level``) with data in the range."""

    @abc.abstractmethod
    async def summary(
        self,
        level: str,
        entity_id: int,
        *,
        user_id: int,
        start_date: dt.date,
        end_date: dt.date,
    ) -> Summary | None:
        """The Summary of one campaign, group or ad; None when not the user's."""

    @abc.abstractmethod
    async def daily_series(
        self,
        *,
        user_id: int,
        start_date: dt.date,
        end_date: dt.date,
        campaign_id: int | None = None,
        group_id: int | None = None,
        ad_id: int | None = None,
    ) -> list[DailyPoint]:
        """Totals per day, every day of the range included (zeros where no data)."""

    @abc.abstractmethod
    async def top(
        self,
        level: str,
        metric: str,
        *,
        user_id: int,
        start_date: dt.date,
        end_date: dt.date,
        n: int = 10,
        descending: bool = True,
    ) -> Sequence[Summary]:
        """The N best (or worst) campaigns, groups or ads by ``metric`` (None last)."""


class OptimizationRepository(EntityRepository[OptimizationSuggestion, SuggestionFilter]):
    ORDERINGS: ClassVar[frozenset[str]] = frozenset({"id", "created_at", "score"})

    @abc.abstractmethod
    async def apply(self, suggestion_id: int, *, user_id: int) -> OptimizationSuggestion:
        """Mark a pending suggestion applied (records applied_at)."""

    @abc.abstractmethod
    async def dismiss(self, suggestion_id: int, *, user_id: int) -> OptimizationSuggestion:
        """Mark a pending suggestion dismissed."""
