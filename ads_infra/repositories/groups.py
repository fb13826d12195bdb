"""GroupRepositoryImpl: ad groups of a user; a group's campaign must be the user's."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.database.tables import ad_groups, ads, campaigns
from ads_infra.database.tables import optimization_suggestions as suggestions
from ads_infra.domain.entities import AdGroup
from ads_infra.domain.errors import ValidationError
from ads_infra.domain.repositories import GroupFilter, GroupRepository
from ads_infra.repositories.base import EntityRepositoryBase, name_contains, owned

__all__ = ["GroupRepositoryImpl"]


class GroupRepositoryImpl(EntityRepositoryBase[AdGroup, GroupFilter], GroupRepository):
    ENTITY = "ad_group"
    TABLE = ad_groups
    ENTITY_CLS = AdGroup
    ORDERINGS = frozenset({"id", "name", "created_at", "updated_at", "status"})

    def _conditions(self, filters: GroupFilter | None) -> list[ColumnElement[bool]]:
        if filters is None:
            return []
        t, out = self.TABLE, []
        if filters.campaign_id is not None:
            out.append(t.c.campaign_id == filters.campaign_id)
        if filters.status is not None:
            out.append(t.c.status == str(filters.status))
        if filters.name_contains:
            out.append(name_contains(t.c.name, filters.name_contains))
        return out

    async def _check_references(self, session: AsyncSession, entity: AdGroup) -> None:
        if await owned(session, campaigns, entity.campaign_id, entity.user_id) is None:
            raise ValidationError(
                "campaign_id",
                f"campaign {entity.campaign_id} does not exist for user {entity.user_id}; "
                "create the group under one of the user's campaigns",
                entity=self.ENTITY,
            )

    def _cascades(self, entity_id: int) -> list[tuple[Table, str, ColumnElement[bool]]]:
        # Deleting a group deletes its ads, their performance and suggestions, and its own.
        of_group = select(ads.c.id).where(ads.c.group_id == entity_id).scalar_subquery()
        return [
            (ads, "ad", ads.c.group_id == entity_id),
            (
                suggestions,
                "suggestion",
                (suggestions.c.group_id == entity_id) | suggestions.c.ad_id.in_(of_group),
            ),
        ]
