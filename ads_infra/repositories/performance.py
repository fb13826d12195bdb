"""PerformanceRepositoryImpl: daily rows keyed by (ad_id, date), with a fast idempotent bulk upsert.

``bulk_upsert`` dedupes the batch in memory (the last record for a key
wins: ON CONFLICT cannot touch a row twice in one statement), checks that
every ad is the user's (filling the row's campaign_id and group_id from the
ad), then:

- PostgreSQL: COPY (in key order) into a session-temporary staging table
  through asyncpg (``copy_records_to_table``), then one ``INSERT ... SELECT
  ... ON CONFLICT (ad_id, date) DO UPDATE``, so concurrent overlapping
  upserts lock rows in the same order (and a deadlock, should one happen
  anyway, is retried by DatabaseManager.run);
- SQLite: batched ``INSERT ... ON CONFLICT DO UPDATE`` (executemany).

Rows whose values did not change are not rewritten, so upserting the same
batch twice is cheap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.domain.entities import PerformanceRecord
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.repositories import Page, PerformanceFilter, PerformanceRepository
from ads_infra.domain.validation import validate_performance_record
from ads_infra.repositories.base import BaseRepository, KeysetQuery, stats_key
from ads_infra.tables import ads, performance_daily

__all__ = ["PerformanceRepositoryImpl"]

COLUMNS = (
    "ad_id", "date", "user_id", "campaign_id", "group_id", "impressions", "clicks",
    "conversions", "cost_micros", "conversion_value_micros",
)  # fmt: skip
VALUE_COLUMNS = COLUMNS[2:]
STAGE = "ads_infra_performance_stage"
# ON COMMIT DELETE ROWS: the staging table lives as long as the pooled
# connection and is emptied by every commit, so it is created once per connection.
STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} "
    "(LIKE performance_daily INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_cols = ", ".join(COLUMNS)
# Built from the module's own constants only, never from input.
UPSERT_FROM_STAGE = (
    f"INSERT INTO performance_daily AS p ({_cols}) "  # noqa: S608
    f"SELECT {_cols} FROM {STAGE} "
    "ON CONFLICT (ad_id, date) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in VALUE_COLUMNS)
    + " WHERE ("
    + ", ".join(f"p.{c}" for c in VALUE_COLUMNS)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"EXCLUDED.{c}" for c in VALUE_COLUMNS)
    + ")"
)
SQLITE_BATCH = 2000
ID_CHUNK = 5000

Key = tuple[int, dt.date]


def _key(item: tuple[Key, Any]) -> Key:
    return item[0]


def _clean(r: PerformanceRecord) -> Decimal:
    """Cheap checks of one record; the full validator only explains a failure.

    Hand-written because the generic validator costs more than the COPY
    itself at 100k rows. Returns the conversions as Decimal.
    """
    conv = r.conversions
    ok = (
        type(r.ad_id) is int
        and r.ad_id > 0
        and type(r.date) is dt.date
        and type(r.impressions) is int
        and type(r.clicks) is int
        and type(r.cost_micros) is int
        and type(r.conversion_value_micros) is int
        and 0 <= r.clicks <= r.impressions
        and 0 <= r.cost_micros <= 10**15
        and 0 <= r.conversion_value_micros <= 10**15
    )
    if ok:
        if type(conv) is not Decimal:
            try:
                conv = Decimal(str(conv))
            except (InvalidOperation, ValueError):
                ok = False
        if ok and conv.is_finite() and conv >= 0:
            return conv
    validate_performance_record(r)
    raise ValidationError("conversions", f"invalid value {r.conversions!r}", entity="performance")


class PerformanceRepositoryImpl(BaseRepository, PerformanceRepository):
    ENTITY = "performance"
    ORDERINGS = frozenset({"date", "ad_id", "impressions", "clicks", "cost_micros"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keyset = KeysetQuery(performance_daily, self.ORDERINGS, key=("date", "ad_id"))

    # -- writes

    async def bulk_upsert(self, records: Iterable[PerformanceRecord], *, user_id: int) -> int:
        batch: dict[Key, tuple[PerformanceRecord, Decimal]] = {}
        for record in records:
            conversions = _clean(record)
            if record.user_id is not None and record.user_id != user_id:
                raise ValidationError(
                    "user_id", f"record for user {record.user_id} in a batch of user {user_id}",
                    entity=self.ENTITY,
                )  # fmt: skip
            batch[(record.ad_id, record.date)] = (record, conversions)
        if not batch:
            return 0
        ad_ids = sorted({ad_id for ad_id, _ in batch})
        postgres = self._db.backend == "postgresql"

        async def op(session: AsyncSession) -> int:
            owners = await self._owners(session, ad_ids, user_id)
            rows = []
            # Key order: concurrent overlapping upserts then lock rows in the same
            # order (no deadlock); sorting here (timsort: near free on sorted input)
            # spares the server a sort that spills to disk at work_mem's default.
            for (ad_id, day), (r, conversions) in sorted(batch.items(), key=_key):
                campaign_id, group_id = owners[ad_id]
                rows.append(
                    (ad_id, day, user_id, campaign_id, group_id, r.impressions, r.clicks,
                     conversions, r.cost_micros, r.conversion_value_micros)
                )  # fmt: skip
            if postgres:
                await self._copy_upsert(session, rows)
            else:
                await self._sqlite_upsert(session, rows)
            return len(rows)

        return await self._write(op, keys=[stats_key(user_id)])

    async def upsert(self, record: PerformanceRecord, *, user_id: int) -> PerformanceRecord:
        """Insert or replace one day of one ad; returns the stored row."""
        await self.bulk_upsert([record], user_id=user_id)
        stored = await self.get(record.ad_id, record.date, user_id=user_id)
        assert stored is not None
        return stored

    async def _owners(
        self, session: AsyncSession, ad_ids: Sequence[int], user_id: int
    ) -> dict[int, tuple[int, int]]:
        owners: dict[int, tuple[int, int]] = {}
        for start in range(0, len(ad_ids), ID_CHUNK):
            chunk = ad_ids[start : start + ID_CHUNK]
            stmt = select(ads.c.id, ads.c.campaign_id, ads.c.group_id).where(
                ads.c.user_id == user_id, ads.c.id.in_(chunk)
            )
            for ad_id, campaign_id, group_id in (await session.execute(stmt)).all():
                owners[ad_id] = (campaign_id, group_id)
        missing = [ad_id for ad_id in ad_ids if ad_id not in owners]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise NotFoundError("ad", shown, user_id=user_id)
        return owners

    async def _copy_upsert(self, session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        # The ownership SELECT above already opened the transaction on this connection.
        # Emptied first: a second upsert in the same transaction must not see the first's rows.
        await driver.execute(f"{STAGE_DDL}; TRUNCATE {STAGE}")
        await driver.copy_records_to_table(STAGE, records=rows, columns=COLUMNS)
        await driver.execute(UPSERT_FROM_STAGE)

    async def _sqlite_upsert(self, session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
        t = performance_daily
        stmt = sqlite_insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.ad_id, t.c.date],
            set_={c: stmt.excluded[c] for c in VALUE_COLUMNS},
        )
        for start in range(0, len(rows), SQLITE_BATCH):
            chunk = [
                dict(zip(COLUMNS, row, strict=True)) for row in rows[start : start + SQLITE_BATCH]
            ]
            await session.execute(stmt, chunk)

    async def delete(self, *, user_id: int, filters: PerformanceFilter | None = None) -> int:
        t = performance_daily
        stmt = delete(t).where(t.c.user_id == user_id, *self._conditions(filters))

        async def op(session: AsyncSession) -> int:
            return int(getattr(await session.execute(stmt), "rowcount", 0) or 0)

        return await self._write(op, keys=[stats_key(user_id)])

    # -- reads

    async def get(self, ad_id: int, day: dt.date, *, user_id: int) -> PerformanceRecord | None:
        t = performance_daily
        stmt = select(t).where(t.c.ad_id == ad_id, t.c.date == day, t.c.user_id == user_id)
        row = await self._fetch_row(stmt, {})
        return None if row is None else to_record(row)

    async def list(
        self,
        *,
        user_id: int,
        filters: PerformanceFilter | None = None,
        order_by: str = "date",
        limit: int = 500,
        cursor: str | None = None,
    ) -> Page[PerformanceRecord]:
        t = performance_daily
        stmt = select(t).where(t.c.user_id == user_id, *self._conditions(filters))
        stmt = self._keyset.apply(stmt, order_by, limit, cursor)

        async def op(session: AsyncSession) -> Sequence[Row[Any]]:
            return (await session.execute(stmt)).all()

        return self._keyset.page(await self._run(op), order_by, limit, to_record)

    async def count(self, *, user_id: int, filters: PerformanceFilter | None = None) -> int:
        t = performance_daily
        stmt = (
            select(func.count())
            .select_from(t)
            .where(t.c.user_id == user_id, *self._conditions(filters))
        )

        async def op(session: AsyncSession) -> int:
            return int((await session.execute(stmt)).scalar_one())

        return await self._run(op)

    def _conditions(self, filters: PerformanceFilter | None) -> Sequence[ColumnElement[bool]]:
        if filters is None:
            return []
        t, out = performance_daily, []
        if filters.ad_id is not None:
            out.append(t.c.ad_id == filters.ad_id)
        if filters.group_id is not None:
            out.append(t.c.group_id == filters.group_id)
        if filters.campaign_id is not None:
            out.append(t.c.campaign_id == filters.campaign_id)
        if filters.start_date is not None:
            out.append(t.c.date >= filters.start_date)
        if filters.end_date is not None:
            out.append(t.c.date <= filters.end_date)
        return [and_(*out)] if out else []


def to_record(row: Row[Any]) -> PerformanceRecord:
    m = row._mapping
    conversions = m["conversions"]
    if not isinstance(conversions, Decimal):
        conversions = Decimal(str(conversions))
    return PerformanceRecord(
        ad_id=m["ad_id"],
        date=m["date"],
        user_id=m["user_id"],
        campaign_id=m["campaign_id"],
        group_id=m["group_id"],
        impressions=m["impressions"],
        clicks=m["clicks"],
        conversions=conversions.quantize(Decimal("0.0001")),
        cost_micros=m["cost_micros"],
        conversion_value_micros=m["conversion_value_micros"],
    )
