"""CampaignRepositoryImpl: campaigns of a user, on SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Table, or_

from ads_infra.database.tables import ad_groups, ads, campaigns
from ads_infra.database.tables import optimization_suggestions as suggestions
from ads_infra.domain.entities import Campaign
from ads_infra.domain.repositories import CampaignFilter, CampaignRepository
from ads_infra.repositories.base import EntityRepositoryBase

__all__ = ["CampaignRepositoryImpl"]


class CampaignRepositoryImpl(EntityRepositoryBase[Campaign, CampaignFilter], CampaignRepository):
    ENTITY = "campaign"
    TABLE = campaigns
    ENTITY_CLS = Campaign
    ORDERINGS = frozenset(
        {"id", "name", "created_at", "updated_at", "status", "daily_budget_micros"}
    )

    def _template(self, user_id: int) -> Campaign:
        return Campaign(user_id=user_id, name="template")

    def _update_guards(
        self, changed: tuple[str, ...], new: Callable[[str], ColumnElement[Any]]
    ) -> list[ColumnElement[bool]]:
        # validate_campaign's two cross-field rules, on the values after the update.
        guards: list[ColumnElement[bool]] = []
        if {"start_date", "end_date"} & set(changed):
            start, end = new("start_date"), new("end_date")
            guards.append(or_(start.is_(None), end.is_(None), end >= start))
        if {"daily_budget_micros", "total_budget_micros"} & set(changed):
            total, daily = new("total_budget_micros"), new("daily_budget_micros")
            guards.append(or_(total.is_(None), daily == 0, total >= daily))
        return guards

    def _cascades(self, entity_id: int) -> list[tuple[Table, str, ColumnElement[bool]]]:
        # Deleting a campaign deletes its groups, ads, performance and suggestions.
        return [
            (ad_groups, "ad_group", ad_groups.c.campaign_id == entity_id),
            (ads, "ad", ads.c.campaign_id == entity_id),
            (suggestions, "suggestion", suggestions.c.campaign_id == entity_id),
        ]
