"""GroupRepositoryImpl: ad groups of a user; a group's campaign must be the user's."""

from __future__ import annotations

from collections.abc import Hashable

from sqlalchemy import ColumnElement, Table, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.database.tables import ad_groups, ads, campaigns
from ads_infra.database.tables import optimization_suggestions as suggestions
from ads_infra.domain.entities import AdGroup
from ads_infra.domain.errors import ValidationError
from ads_infra.domain.repositories import GroupFilter, GroupRepository
from ads_infra.repositories.base import EntityRepositoryBase, owned

__all__ = ["GroupRepositoryImpl"]


class GroupRepositoryImpl(EntityRepositoryBase[AdGroup, GroupFilter], GroupRepository):
    ENTITY = "ad_group"
    TABLE = ad_groups
    ENTITY_CLS = AdGroup
    ORDERINGS = frozenset({"id", "name", "created_at", "updated_at", "status"})

    def _template(self, user_id: int) -> AdGroup:
        return AdGroup(user_id=user_id, campaign_id=1, name="template")

    def _reference_guard(self, shape: Hashable) -> ColumnElement[bool]:
        c = campaigns
        return exists().where(
            c.c.id == bindparam("campaign_id"), c.c.user_id == bindparam("user_id")
        )

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
