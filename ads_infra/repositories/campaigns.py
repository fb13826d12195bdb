"""CampaignRepositoryImpl: campaigns of a user, on SQLAlchemy Core."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table

from ads_infra.database.tables import ad_groups, ads, campaigns
from ads_infra.database.tables import optimization_suggestions as suggestions
from ads_infra.domain.entities import Campaign
from ads_infra.domain.repositories import CampaignFilter, CampaignRepository
from ads_infra.repositories.base import EntityRepositoryBase, name_contains

__all__ = ["CampaignRepositoryImpl"]


class CampaignRepositoryImpl(EntityRepositoryBase[Campaign, CampaignFilter], CampaignRepository):
    ENTITY = "campaign"
    TABLE = campaigns
    ENTITY_CLS = Campaign
    ORDERINGS = frozenset(
        {"id", "name", "created_at", "updated_at", "status", "daily_budget_micros"}
    )

    def _conditions(self, filters: CampaignFilter | None) -> list[ColumnElement[bool]]:
        if filters is None:
            return []
        t, out = self.TABLE, []
        if filters.status is not None:
            out.append(t.c.status == str(filters.status))
        if filters.objective is not None:
            out.append(t.c.objective == str(filters.objective))
        if filters.name_contains:
            out.append(name_contains(t.c.name, filters.name_contains))
        return out

    def _cascades(self, entity_id: int) -> list[tuple[Table, str, ColumnElement[bool]]]:
        # Deleting a campaign deletes its groups, ads, performance and suggestions.
        return [
            (ad_groups, "ad_group", ad_groups.c.campaign_id == entity_id),
            (ads, "ad", ads.c.campaign_id == entity_id),
            (suggestions, "suggestion", suggestions.c.campaign_id == entity_id),
        ]
