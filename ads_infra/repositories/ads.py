"""AdsRepositoryImpl: ads of a user, and the user's statistics (cached)."""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.database.tables import ad_groups, ads, campaigns, performance_daily
from ads_infra.database.tables import optimization_suggestions as suggestions
from ads_infra.domain.entities import Ad
from ads_infra.domain.errors import ValidationError
from ads_infra.domain.metrics import MetricTotals
from ads_infra.domain.repositories import AdFilter, AdsRepository, UserStats
from ads_infra.repositories.base import EntityRepositoryBase, check_ids, owned
from ads_infra.repositories.keys import stats_key
from ads_infra.repositories.totals import SUMS, totals_of

__all__ = ["AdsRepositoryImpl", "load_user_stats", "stats_from_json", "stats_to_json"]


class AdsRepositoryImpl(EntityRepositoryBase[Ad, AdFilter], AdsRepository):
    ENTITY = "ad"
    TABLE = ads
    ENTITY_CLS = Ad
    ORDERINGS = frozenset({"id", "name", "created_at", "updated_at", "status"})

    def _template(self, user_id: int) -> Ad:
        return Ad(user_id=user_id, campaign_id=1, group_id=1, name="template")

    def _reference_guard(self, shape: Hashable) -> ColumnElement[bool]:
        # The group is the user's and in the ad's campaign (the composite foreign
        # key says so too, but as an error that would abort a unit's transaction).
        g = ad_groups
        return exists().where(
            g.c.id == bindparam("group_id"),
            g.c.campaign_id == bindparam("campaign_id"),
            g.c.user_id == bindparam("user_id"),
        )

    async def _check_references(self, session: AsyncSession, entity: Ad) -> None:
        group = await owned(session, ad_groups, entity.group_id, entity.user_id, "campaign_id")
        if group is None:
            raise ValidationError(
                "group_id",
                f"ad group {entity.group_id} does not exist for user {entity.user_id}; "
                "create the ad under one of the user's groups",
                entity=self.ENTITY,
            )
        if group.campaign_id != entity.campaign_id:
            raise ValidationError(
                "campaign_id",
                f"is {entity.campaign_id} but ad group {entity.group_id} belongs to campaign "
                f"{group.campaign_id}; use the group's campaign",
                entity=self.ENTITY,
            )

    def _cascades(self, entity_id: int) -> list[tuple[Table, str, ColumnElement[bool]]]:
        # Deleting an ad deletes its performance and its suggestions.
        return [(suggestions, "suggestion", suggestions.c.ad_id == entity_id)]

    async def get_user_stats(self, user_id: int) -> UserStats:
        check_ids(user_id=user_id)

        async def load() -> UserStats:
            # A cache fill reads the primary (see get_by_id); uncached, a replica may answer.
            return await self._scope.run_read(
                lambda s: load_user_stats(s, user_id), primary=self._caching
            )

        stats = await self._cached(
            stats_key(user_id), user_id, load, stats_to_json, stats_from_json
        )
        assert stats is not None
        return stats


async def load_user_stats(session: AsyncSession, user_id: int) -> UserStats:
    """Counts by status of campaigns, groups and ads, and all-time performance sums."""
    counts: dict[str, dict[str, int]] = {}
    for name, table in (("campaigns", campaigns), ("groups", ad_groups), ("ads", ads)):
        stmt = (
            select(table.c.status, func.count())
            .where(table.c.user_id == user_id)
            .group_by(table.c.status)
        )
        counts[name] = {str(s): int(n) for s, n in (await session.execute(stmt)).all()}
    p = performance_daily
    sums = (await session.execute(select(*SUMS).where(p.c.user_id == user_id))).one()
    return UserStats(
        user_id=user_id,
        campaigns_by_status=counts["campaigns"],
        groups_by_status=counts["groups"],
        ads_by_status=counts["ads"],
        totals=totals_of(sums),
    )


def stats_to_json(stats: UserStats) -> dict[str, Any]:
    return stats.to_dict()


def stats_from_json(data: dict[str, Any]) -> UserStats:
    t = data["totals"]
    return UserStats(
        user_id=data["user_id"],
        campaigns_by_status=data["campaigns_by_status"],
        groups_by_status=data["groups_by_status"],
        ads_by_status=data["ads_by_status"],
        totals=MetricTotals(
            impressions=t["impressions"],
            clicks=t["clicks"],
            conversions=Decimal(t["conversions"]),
            cost_micros=t["cost_micros"],
            conversion_value_micros=t["conversion_value_micros"],
        ),
    )
