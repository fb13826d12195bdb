"""AnalyticsRepositoryImpl: roll-ups of daily performance per campaign, group or ad.

Sums are computed in SQL; the derived metrics are always derived from the
sums (:mod:`ads_infra.domain.metrics`), never averaged from daily ratios.
Ranking by a derived metric is done in SQL with the same formula, so
``top`` reads only N rows however many ads a user has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, Table, bindparam, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.database.tables import ad_groups, ads, campaigns, performance_daily
from ads_infra.domain.errors import ValidationError
from ads_infra.domain.metrics import MetricTotals
from ads_infra.domain.repositories import AnalyticsRepository, DailyPoint, Summary
from ads_infra.domain.validation import check_date
from ads_infra.repositories.base import BaseRepository, check_ids, owned
from ads_infra.repositories.statements import queries_of
from ads_infra.repositories.totals import (
    CLICKS,
    CONVERSIONS,
    COST,
    IMPRESSIONS,
    SUMS,
    VALUE,
    totals_of,
)

__all__ = ["AnalyticsRepositoryImpl"]

p = performance_daily
LEVELS: dict[str, tuple[Table, Any]] = {
    "campaign": (campaigns, p.c.campaign_id),
    "group": (ad_groups, p.c.group_id),
    "ad": (ads, p.c.ad_id),
}
MAX_RANGE_DAYS = 3700


def _ratio(numerator: Any, denominator: Any, scale: int = 1) -> ColumnElement[Any]:
    num = cast(numerator, Float) * scale if scale != 1 else cast(numerator, Float)
    return num / func.nullif(cast(denominator, Float), 0)


# The SQL twin of each metric, used only to rank (values come from domain.metrics).
RANK_EXPRESSIONS: dict[str, ColumnElement[Any]] = {
    "impressions": IMPRESSIONS,
    "clicks": CLICKS,
    "conversions": CONVERSIONS,
    "cost_micros": COST,
    "conversion_value_micros": VALUE,
    "ctr": _ratio(CLICKS, IMPRESSIONS),
    "cpc_micros": _ratio(COST, CLICKS),
    "cpm_micros": _ratio(COST, IMPRESSIONS, 1000),
    "cpa_micros": _ratio(COST, CONVERSIONS),
    "roas": _ratio(VALUE, COST),
    "conversion_rate": _ratio(CONVERSIONS, CLICKS),
}


def _check_range(start_date: dt.date, end_date: dt.date) -> None:
    check_date("start_date", start_date)
    check_date("end_date", end_date)
    if end_date < start_date:
        raise ValidationError("end_date", f"{end_date} is before start_date {start_date}")
    if (end_date - start_date).days > MAX_RANGE_DAYS:
        raise ValidationError("end_date", f"the range is longer than {MAX_RANGE_DAYS} days")


def _level(level: str) -> tuple[Table, Any]:
    try:
        return LEVELS[level]
    except KeyError:
        raise ValidationError(
            "level", f"unknown level {level!r}; use one of: {', '.join(LEVELS)}"
        ) from None


def _optional_ids(**ids: int | None) -> None:
    check_ids(**{name: value for name, value in ids.items() if value is not None})


_SUMS = ("impressions", "clicks", "conversions", "cost_micros", "conversion_value_micros")


def _summaries(level: str, by_campaign: bool, by_group: bool) -> Select[Any]:
    """The roll-up of one level, with named parameters: one statement per shape."""
    table, key = LEVELS[level]
    stmt = (
        select(
            table.c.id.label("id"),
            table.c.name.label("name"),
            *(total.label(name) for total, name in zip(SUMS, _SUMS, strict=True)),
        )
        .select_from(p.join(table, key == table.c.id))
        .where(
            p.c.user_id == bindparam("user_id"),
            table.c.user_id == bindparam("user_id"),
            p.c.date >= bindparam("start", type_=p.c.date.type),
            p.c.date <= bindparam("end", type_=p.c.date.type),
        )
    )
    if by_campaign:
        stmt = stmt.where(p.c.campaign_id == bindparam("campaign_id"))
    if by_group:
        stmt = stmt.where(p.c.group_id == bindparam("group_id"))
    return stmt.group_by(table.c.id, table.c.name).order_by(table.c.id)


class AnalyticsRepositoryImpl(BaseRepository, AnalyticsRepository):
    ENTITY = "analytics"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queries = queries_of(type(self))

    def _grouped(
        self, level: str, user_id: int, start_date: dt.date, end_date: dt.date
    ) -> tuple[Table, Any]:
        check_ids(user_id=user_id)
        _check_range(start_date, end_date)
        table, key = _level(level)
        stmt = (
            select(table.c.id, table.c.name, *SUMS)
            .select_from(p.join(table, key == table.c.id))
            .where(
                p.c.user_id == user_id,
                table.c.user_id == user_id,
                p.c.date >= start_date,
                p.c.date <= end_date,
            )
            .group_by(table.c.id, table.c.name)
        )
        return table, stmt

    @staticmethod
    def _summary(level: str, row: Any) -> Summary:
        return Summary(level=level, id=row[0], name=row[1], totals=totals_of(row[2:7]))

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
        _optional_ids(campaign_id=campaign_id, group_id=group_id)
        check_ids(user_id=user_id)
        _check_range(start_date, end_date)
        _level(level)
        params: dict[str, Any] = {"user_id": user_id, "start": start_date, "end": end_date}
        if campaign_id is not None:
            params["campaign_id"] = campaign_id
        if group_id is not None:
            params["group_id"] = group_id
        shape = (level, campaign_id is not None, group_id is not None)
        query = self._queries.get(shape, lambda: _summaries(*shape))
        rows = await self._scope.rows(query, params)
        return [
            Summary(
                level=level, id=r["id"], name=r["name"], totals=totals_of([r[n] for n in _SUMS])
            )
            for r in rows
        ]

    async def summary(
        self,
        level: str,
        entity_id: int,
        *,
        user_id: int,
        start_date: dt.date,
        end_date: dt.date,
    ) -> Summary | None:
        table, stmt = self._grouped(level, user_id, start_date, end_date)
        stmt = stmt.where(table.c.id == entity_id)

        async def op(session: AsyncSession) -> Summary | None:
            row = (await session.execute(stmt)).first()
            if row is not None:
                return self._summary(level, row)
            entity = await owned(session, table, entity_id, user_id, "id", "name")
            if entity is None:
                return None
            return Summary(level=level, id=entity.id, name=entity.name, totals=MetricTotals())

        return await self._scope.run_read(op)

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
        check_ids(user_id=user_id)
        _optional_ids(campaign_id=campaign_id, group_id=group_id, ad_id=ad_id)
        _check_range(start_date, end_date)
        stmt = select(p.c.date, *SUMS).where(
            p.c.user_id == user_id, p.c.date >= start_date, p.c.date <= end_date
        )
        for column, value in (
            (p.c.campaign_id, campaign_id),
            (p.c.group_id, group_id),
            (p.c.ad_id, ad_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        stmt = stmt.group_by(p.c.date).order_by(p.c.date)

        async def op(session: AsyncSession) -> dict[dt.date, MetricTotals]:
            rows = (await session.execute(stmt)).all()
            return {_as_date(r[0]): totals_of(r[1:6]) for r in rows}

        by_day = await self._scope.run_read(op)
        days = (end_date - start_date).days + 1
        return [
            DailyPoint(date=day, totals=by_day.get(day, MetricTotals()))
            for day in (start_date + dt.timedelta(days=i) for i in range(days))
        ]

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
        if metric not in RANK_EXPRESSIONS:
            raise ValidationError(
                "metric", f"cannot rank by {metric!r}; use one of: {', '.join(RANK_EXPRESSIONS)}"
            )
        if not isinstance(n, int) or not 1 <= n <= 1000:
            raise ValidationError("n", f"must be between 1 and 1000, got {n!r}")
        table, stmt = self._grouped(level, user_id, start_date, end_date)
        rank = RANK_EXPRESSIONS[metric]
        # None (a zero denominator) ranks last either way; ties by id for a stable order.
        stmt = stmt.order_by(
            rank.is_(None), rank.desc() if descending else rank.asc(), table.c.id
        ).limit(n)

        async def op(session: AsyncSession) -> list[Summary]:
            return [self._summary(level, r) for r in (await session.execute(stmt)).all()]

        return await self._scope.run_read(op)


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
