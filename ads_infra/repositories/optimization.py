"""OptimizationRepositoryImpl: suggestions of a user; create, list, apply, dismiss."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, exists, update
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.database.tables import ad_groups, ads, campaigns, optimization_suggestions
from ads_infra.domain.entities import (
    OptimizationSuggestion,
    SuggestionStatus,
    SuggestionType,
    utcnow,
)
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.repositories import OptimizationRepository, SuggestionFilter
from ads_infra.repositories.base import EntityRepositoryBase, check_ids, owned

__all__ = ["OptimizationRepositoryImpl"]


class OptimizationRepositoryImpl(
    EntityRepositoryBase[OptimizationSuggestion, SuggestionFilter], OptimizationRepository
):
    ENTITY = "suggestion"
    TABLE = optimization_suggestions
    ENTITY_CLS = OptimizationSuggestion
    ORDERINGS = frozenset({"id", "created_at", "score"})

    def _template(self, user_id: int) -> OptimizationSuggestion:
        return OptimizationSuggestion(user_id=user_id, campaign_id=1, type=SuggestionType.BUDGET)

    def _reference_shape(self, entity: OptimizationSuggestion) -> Hashable:
        return (entity.group_id is not None, entity.ad_id is not None)

    def _reference_guard(self, shape: Hashable) -> ColumnElement[bool]:
        assert isinstance(shape, tuple)
        with_group, with_ad = shape
        uid: BindParameter[Any] = bindparam("user_id")
        campaign: BindParameter[Any] = bindparam("campaign_id")
        guards = [exists().where(campaigns.c.id == campaign, campaigns.c.user_id == uid)]
        if with_group:
            g = ad_groups
            guards.append(
                exists().where(
                    g.c.id == bindparam("group_id"), g.c.campaign_id == campaign, g.c.user_id == uid
                )
            )
        if with_ad:
            a = ads
            of_ad = [a.c.id == bindparam("ad_id"), a.c.campaign_id == campaign, a.c.user_id == uid]
            if with_group:
                of_ad.append(a.c.group_id == bindparam("group_id"))
            guards.append(exists().where(*of_ad))
        return and_(*guards)

    async def _check_references(
        self, session: AsyncSession, entity: OptimizationSuggestion
    ) -> None:
        uid = entity.user_id
        if await owned(session, campaigns, entity.campaign_id, uid) is None:
            raise ValidationError(
                "campaign_id", f"campaign {entity.campaign_id} does not exist for user {uid}",
                entity=self.ENTITY,
            )  # fmt: skip
        if entity.group_id is not None:
            group = await owned(session, ad_groups, entity.group_id, uid, "campaign_id")
            if group is None or group.campaign_id != entity.campaign_id:
                raise ValidationError(
                    "group_id",
                    f"group {entity.group_id} is not a group of campaign {entity.campaign_id} "
                    f"of user {uid}",
                    entity=self.ENTITY,
                )
        if entity.ad_id is not None:
            ad = await owned(session, ads, entity.ad_id, uid, "campaign_id", "group_id")
            if (
                ad is None
                or ad.campaign_id != entity.campaign_id
                or (entity.group_id is not None and ad.group_id != entity.group_id)
            ):
                raise ValidationError(
                    "ad_id",
                    f"ad {entity.ad_id} is not an ad of campaign {entity.campaign_id} "
                    f"of user {uid}",
                    entity=self.ENTITY,
                )

    def _invalidated_by_write(self, user_id: int, entity_id: int) -> tuple[list[str], list[str]]:
        return [self.cache_key(user_id, entity_id)], []

    async def _resolve(
        self, suggestion_id: int, user_id: int, status: SuggestionStatus
    ) -> OptimizationSuggestion:
        check_ids(id=suggestion_id, user_id=user_id)
        t = self.TABLE
        now = utcnow()
        stamp = "applied_at" if status is SuggestionStatus.APPLIED else "dismissed_at"

        async def op(session: AsyncSession) -> OptimizationSuggestion:
            params = {"id": suggestion_id, "user_id": user_id}
            row = (await session.execute(self._by_id_for_update, params)).first()
            if row is None:
                raise NotFoundError(self.ENTITY, suggestion_id, user_id=user_id)
            current = self._mapper.from_row(row)
            if current.status is not SuggestionStatus.PENDING:
                raise ValidationError(
                    "status",
                    f"suggestion {suggestion_id} is already {current.status}; only pending "
                    "suggestions can be applied or dismissed",
                    entity=self.ENTITY,
                )
            await session.execute(
                update(t)
                .where(t.c.id == suggestion_id, t.c.user_id == user_id)
                .values(status=status.value, **{stamp: now})
            )
            current.status = status
            setattr(current, stamp, now)
            return current

        return await self._write(op, keys=[self.cache_key(user_id, suggestion_id)])

    async def apply(self, suggestion_id: int, *, user_id: int) -> OptimizationSuggestion:
        return await self._resolve(suggestion_id, user_id, SuggestionStatus.APPLIED)

    async def dismiss(self, suggestion_id: int, *, user_id: int) -> OptimizationSuggestion:
        return await self._resolve(suggestion_id, user_id, SuggestionStatus.DISMISSED)
