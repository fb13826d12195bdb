"""PerformanceRepositoryImpl: daily rows keyed by (ad_id, date), with a fast idempotent bulk upsert.

``bulk_upsert`` checks and dedupes the batch in one pass (the last record
for a key wins: ON CONFLICT cannot touch a row twice in one statement),
checks that every ad is the user's, then:

- PostgreSQL: when none of the keys exists yet (the daily-ingestion case),
  COPY straight into the table inside a savepoint; otherwise, or when a
  concurrent writer got some of the keys in first, COPY into a
  connection-local temporary staging table through asyncpg
  (``copy_records_to_table``), then one ``INSERT ... SELECT ... JOIN ads ...
  ON CONFLICT (ad_id, date) DO UPDATE`` (user, campaign and group come from
  the ad). Rows go in key order, so concurrent overlapping upserts lock rows
  in the same order (a deadlock, should one happen anyway, is retried by
  DatabaseManager.run);
- SQLite: batched ``INSERT ... ON CONFLICT DO UPDATE`` (executemany).

Rows whose values did not change are not rewritten, so upserting the same
batch twice is cheap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from ads_infra.core.errors import TransientDatabaseError
from ads_infra.database.tables import ads, performance_daily
from ads_infra.domain.entities import PerformanceRecord
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.repositories import Page, PerformanceFilter, PerformanceRepository
from ads_infra.domain.validation import (
    CONVERSIONS_QUANTUM,
    MAX_CONVERSIONS,
    MAX_COUNT,
    MAX_MONEY_MICROS,
    check_date,
    validate_performance_record,
)
from ads_infra.repositories.base import BaseRepository, check_filters, check_ids
from ads_infra.repositories.bulk import Part, Parts, Records, parts, stream_postgres, stream_sqlite
from ads_infra.repositories.keys import stats_key
from ads_infra.repositories.mapping import to_performance_record
from ads_infra.repositories.pagination import KeysetQuery
from ads_infra.repositories.statements import Query, queries_of

__all__ = ["PerformanceRepositoryImpl"]

COLUMNS = (
    "ad_id", "date", "user_id", "campaign_id", "group_id", "impressions", "clicks",
    "conversions", "cost_micros", "conversion_value_micros",
)  # fmt: skip
VALUE_COLUMNS = COLUMNS[2:]
# What a caller supplies; user, campaign and group come from the ad.
STAGE_COLUMNS = (
    "ad_id", "date", "impressions", "clicks", "conversions", "cost_micros",
    "conversion_value_micros",
)  # fmt: skip
STAGE = "ads_infra_perf_stage"
# ON COMMIT DELETE ROWS: the staging table lives as long as the pooled
# connection and is emptied by every commit, so it is created once per
# connection; TRUNCATE covers a second upsert in the same transaction. Rows
# are copied in key order and a heap scan of a fresh table returns them in
# that order, so the INSERT needs no sort of its own.
STAGE_SETUP = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (ad_id bigint NOT NULL, date date NOT NULL, "
    "impressions bigint NOT NULL, clicks bigint NOT NULL, conversions numeric(18, 4) NOT NULL, "
    "cost_micros bigint NOT NULL, conversion_value_micros bigint NOT NULL) "
    f"ON COMMIT DELETE ROWS; TRUNCATE {STAGE}"
)
ANY_EXISTING = (
    "SELECT EXISTS (SELECT 1 FROM performance_daily WHERE ad_id = ANY($1::bigint[]) "
    "AND date BETWEEN $2 AND $3)"
)
UNIQUE_VIOLATION = "23505"
# Built from the module's own constants only, never from input.
UPSERT_FROM_STAGE = (
    f"INSERT INTO performance_daily AS p ({', '.join(COLUMNS)}) "  # noqa: S608
    "SELECT s.ad_id, s.date, a.user_id, a.campaign_id, a.group_id, s.impressions, s.clicks, "
    "s.conversions, s.cost_micros, s.conversion_value_micros "
    f"FROM {STAGE} s JOIN ads a ON a.id = s.ad_id AND a.user_id = $1 "
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
StageRow = tuple[int, dt.date, int, int, Decimal, int, int]
# A checked row: the record's position in the input, then its STAGE_COLUMNS. The
# position stays on in the batch path too and is sliced off as rows are sent, rather
# than first building a second dict of every row without it.
Checked = tuple[Any, ...]


def _stage_rows(records: Iterable[PerformanceRecord], user_id: int) -> dict[Key, Checked]:
    """Checked, deduplicated rows (position first); the last record for a key wins."""
    return _checked(records, user_id, 0)


def _checked(
    records: Iterable[PerformanceRecord], user_id: int, seq: int
) -> dict[Key, tuple[Any, ...]]:
    """Checked, deduplicated rows: each is the record's position (counted from ``seq``)
    and then its STAGE_COLUMNS; the last record for a key wins.

    The checks are inlined rather than the generic validator's because at
    100k rows that one costs more than the COPY itself. They are stricter
    (exact types), so a record failing them goes through the full validator:
    it names the field of a bad value, and what it accepts is stored as plain
    values. (Checking a column at a time with ``map``/``min``/``set`` was
    tried: its fifteen C-level passes cost about what this one loop does.)
    """
    batch: dict[Key, tuple[Any, ...]] = {}
    date, dec, top, most = dt.date, Decimal, MAX_MONEY_MICROS, MAX_COUNT
    # Conversions take few distinct values (whole numbers, halves, quarters): one that
    # passed is known again by its exact text, for less than its range and quantum
    # checks cost. (Not by the Decimal itself: hashing a new Decimal costs more still.)
    good: set[str] = set()
    for n, r in enumerate(records, seq):
        ad_id, day, imp, clk, conv = r.ad_id, r.date, r.impressions, r.clicks, r.conversions
        cost, value = r.cost_micros, r.conversion_value_micros
        if type(conv) is not dec:
            try:
                conv = dec(str(conv))
            except (InvalidOperation, ValueError):
                conv = dec("NaN")
        if (
            type(ad_id) is int
            and 0 < ad_id <= most
            and type(day) is date
            and type(imp) is int
            and type(clk) is int
            and type(cost) is int
            and type(value) is int
            and 0 <= clk <= imp <= most
            and 0 <= cost <= top
            and 0 <= value <= top
            and (str(conv) in good or _good_conversions(conv, good))
        ):
            batch[ad_id, day] = (n, ad_id, day, imp, clk, conv, cost, value)
        else:
            row = _validated_row(r)
            batch[row[0], row[1]] = (n, *row)
        if r.user_id is not None and r.user_id != user_id:
            raise ValidationError(
                "user_id", f"record for user {r.user_id} in a batch of user {user_id}",
                entity="performance",
            )  # fmt: skip
    return batch


_ZERO = Decimal(0)  # a Decimal compares quicker with a Decimal than with an int


def _good_conversions(conv: Decimal, good: set[str]) -> bool:
    """Whether ``conv`` is finite, in range and has at most four decimals; its text is
    remembered in ``good`` when it is (up to 1,024 texts)."""
    if (
        conv.is_finite()
        and _ZERO <= conv < MAX_CONVERSIONS
        and conv == conv.quantize(CONVERSIONS_QUANTUM)
    ):
        if len(good) < 1024:
            good.add(str(conv))
        return True
    return False


def _validated_row(r: PerformanceRecord) -> StageRow:
    """The slow path: the full validator, then the values as the plain types the drivers expect.

    The validator accepts int and date subclasses, which the inline checks do not.
    """
    validate_performance_record(r)
    day = r.date
    return (
        int(r.ad_id),
        dt.date(day.year, day.month, day.day),
        int(r.impressions),
        int(r.clicks),
        r.conversions.quantize(CONVERSIONS_QUANTUM),
        int(r.cost_micros),
        int(r.conversion_value_micros),
    )


def _upsert_one(backend: str) -> Executable:
    """``INSERT ... SELECT ... FROM ads WHERE id AND user_id ON CONFLICT DO UPDATE RETURNING``:
    one day of one ad, its owner, campaign and group taken from the ad."""
    p, a = performance_daily, ads
    dialect_insert = postgresql.insert if backend == "postgresql" else sqlite.insert
    given = {c: bindparam(c, type_=p.c[c].type) for c in STAGE_COLUMNS}
    source = select(
        a.c.id, given["date"], a.c.user_id, a.c.campaign_id, a.c.group_id,
        *(given[c] for c in STAGE_COLUMNS[2:]),
    ).where(a.c.id == bindparam("ad_id"), a.c.user_id == bindparam("user_id"))  # fmt: skip
    stmt = dialect_insert(p).from_select(COLUMNS, source)
    return stmt.on_conflict_do_update(
        index_elements=[p.c.ad_id, p.c.date], set_={c: stmt.excluded[c] for c in VALUE_COLUMNS}
    ).returning(*p.c)


async def _next(pieces: Parts) -> Part | None:
    if isinstance(pieces, AsyncIterator):
        return await anext(pieces, None)
    return next(pieces, None)


class PerformanceRepositoryImpl(BaseRepository, PerformanceRepository):
    ENTITY = "performance"
    ORDERINGS = frozenset({"date", "ad_id", "impressions", "clicks", "cost_micros"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keyset = KeysetQuery(performance_daily, self.ORDERINGS, key=("date", "ad_id"))
        self._queries = queries_of(type(self))

    # -- writes

    async def bulk_upsert(self, records: Records, *, user_id: int) -> int:
        """Insert or replace rows by (ad_id, date) from any iterable or async iterable;
        returns the number of distinct keys.

        Up to one chunk of records (:data:`~.bulk.CHUNK`) is upserted from
        memory; a longer input is streamed (:mod:`.bulk`), holding one chunk
        at a time.
        """
        check_ids(user_id=user_id)
        pieces = parts(records)
        first = await _next(pieces)
        if first is None:
            return 0
        second = await _next(pieces)
        if second is None:
            return await self._upsert_batch(_stage_rows(first, user_id), user_id)
        head = [first, second]
        del first, second  # the stream drops each part once it is sent
        return await self._upsert_stream(records, head, pieces, user_id)

    async def _upsert_batch(self, batch: dict[Key, Checked], user_id: int) -> int:
        ad_ids = sorted({ad_id for ad_id, _ in batch})
        postgres = self._db.backend == "postgresql"

        async def op(session: AsyncSession) -> int:
            owners = await self._owners(session, ad_ids, user_id)
            if postgres:
                await self._copy_upsert(session, batch, owners, user_id)
            else:
                await self._sqlite_upsert(session, batch, owners, user_id)
            return len(batch)

        # Upserting the same rows twice leaves what once does: a commit whose
        # reply was lost is retried rather than reported as unknown.
        return await self._write(op, keys=[stats_key(user_id)], idempotent=True)

    async def _upsert_stream(
        self, records: Records, head: list[Part], tail: Parts, user_id: int
    ) -> int:
        # A list can be read again for a retry; a generator or stream cannot.
        again = isinstance(records, Sequence)
        postgres = self._db.backend == "postgresql"
        attempts = 0

        async def upsert_chunk(session: AsyncSession, part: Part) -> Iterable[Key]:
            chunk = _stage_rows(part, user_id)
            owners = await self._owners(session, sorted({a for a, _ in chunk}), user_id)
            await self._sqlite_upsert(session, chunk, owners, user_id)
            return chunk.keys()

        async def op(session: AsyncSession) -> int:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                first, rest = head, tail
            elif again:
                first, rest = [], parts(records)
            else:
                raise TransientDatabaseError(
                    "the database failed while the records were streamed, and an input that "
                    "can be read once was not read again: run bulk_upsert again with the same "
                    "records (it is idempotent), or pass a list"
                )
            if postgres:
                return await stream_postgres(session, first, rest, user_id, _checked)
            return await stream_sqlite(session, first, rest, user_id, upsert_chunk)

        return await self._write(op, keys=[stats_key(user_id)], idempotent=True)

    async def upsert(self, record: PerformanceRecord, *, user_id: int) -> PerformanceRecord:
        """Insert or replace one day of one ad; returns the stored row.

        One statement: the row is built from the ad's own row (owner,
        campaign, group), so an ad that is not the user's inserts nothing and
        returns nothing.
        """
        check_ids(user_id=user_id)
        ((_, ad_id, day, imp, clk, conv, cost, value),) = _stage_rows([record], user_id).values()
        params = {
            "ad_id": ad_id, "date": day, "user_id": user_id, "impressions": imp, "clicks": clk,
            "conversions": conv, "cost_micros": cost, "conversion_value_micros": value,
        }  # fmt: skip
        row = await self._scope.write_row(self._upsert_one, params, idempotent=True)
        if row is None:
            raise NotFoundError("ad", str(ad_id), user_id=user_id)
        await self._scope.invalidate_after_commit([stats_key(user_id)], [])
        return to_performance_record(row)

    @property
    def _upsert_one(self) -> Query:
        backend = self._db.backend
        return self._queries.get(("upsert", backend), lambda: _upsert_one(backend))

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

    async def _copy_upsert(
        self,
        session: AsyncSession,
        batch: dict[Key, Checked],
        owners: dict[int, tuple[int, int]],
        user_id: int,
    ) -> None:
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        # The ownership SELECT above already opened the transaction on this connection.
        # Key order, so concurrent writers lock rows in the same order (timsort
        # is linear on the usual already-sorted input).
        keys = sorted(batch)
        ad_ids = sorted({ad_id for ad_id, _ in keys})
        days = [day for _, day in keys]
        if not await driver.fetchval(ANY_EXISTING, ad_ids, min(days), max(days)):
            # Only new keys (the daily-ingestion case): COPY straight into the
            # table, as fast as COPY gets. A concurrent writer may insert some of
            # these keys meanwhile: the savepoint then undoes this attempt and
            # the upsert below handles the batch.
            rows = []
            for key in keys:
                _, ad_id, day, imp, clk, conv, cost, value = batch[key]
                campaign_id, group_id = owners[ad_id]
                rows.append(
                    (ad_id, day, user_id, campaign_id, group_id, imp, clk, conv, cost, value)
                )
            try:
                async with driver.transaction():  # a SAVEPOINT inside the session's transaction
                    await driver.copy_records_to_table(
                        performance_daily.name, records=rows, columns=COLUMNS
                    )
                return
            except Exception as exc:
                if getattr(exc, "sqlstate", None) != UNIQUE_VIOLATION:
                    raise
        await driver.execute(STAGE_SETUP)
        await driver.copy_records_to_table(
            STAGE, records=[batch[key][1:] for key in keys], columns=STAGE_COLUMNS
        )
        await driver.execute(UPSERT_FROM_STAGE, user_id)

    async def _sqlite_upsert(
        self,
        session: AsyncSession,
        batch: dict[Key, Checked],
        owners: dict[int, tuple[int, int]],
        user_id: int,
    ) -> None:
        t = performance_daily
        stmt = sqlite.insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.ad_id, t.c.date],
            set_={c: stmt.excluded[c] for c in VALUE_COLUMNS},
        )
        rows = [
            {"ad_id": ad_id, "date": day, "user_id": user_id, "campaign_id": owners[ad_id][0],
             "group_id": owners[ad_id][1], "impressions": imp, "clicks": clk, "conversions": conv,
             "cost_micros": cost, "conversion_value_micros": value}
            for (ad_id, day), (_, _, _, imp, clk, conv, cost, value) in sorted(batch.items())
        ]  # fmt: skip
        for start in range(0, len(rows), SQLITE_BATCH):
            await session.execute(stmt, rows[start : start + SQLITE_BATCH])

    async def delete(self, *, user_id: int, filters: PerformanceFilter | None = None) -> int:
        check_ids(user_id=user_id)
        check_filters(filters)
        t = performance_daily
        stmt = delete(t).where(t.c.user_id == user_id, *self._conditions(filters))

        async def op(session: AsyncSession) -> int:
            return int(getattr(await session.execute(stmt), "rowcount", 0) or 0)

        return await self._write(op, keys=[stats_key(user_id)])

    # -- reads

    async def get(self, ad_id: int, day: dt.date, *, user_id: int) -> PerformanceRecord | None:
        check_ids(ad_id=ad_id, user_id=user_id)
        check_date("day", day, entity=self.ENTITY)
        t = performance_daily
        stmt = select(t).where(t.c.ad_id == ad_id, t.c.date == day, t.c.user_id == user_id)
        row = await self._scope.fetch_row(stmt, {})
        return None if row is None else to_performance_record(row._mapping)

    async def list(
        self,
        *,
        user_id: int,
        filters: PerformanceFilter | None = None,
        order_by: str = "date",
        limit: int = 500,
        cursor: str | None = None,
    ) -> Page[PerformanceRecord]:
        check_ids(user_id=user_id)
        check_filters(filters)
        t = performance_daily
        stmt = select(t).where(t.c.user_id == user_id, *self._conditions(filters))
        stmt = self._keyset.apply(stmt, order_by, limit, cursor)

        async def op(session: AsyncSession) -> Sequence[Any]:
            return (await session.execute(stmt)).mappings().all()

        rows = await self._scope.run_read(op)
        return self._keyset.page(
            rows, order_by, limit, lambda page: [to_performance_record(r) for r in page]
        )

    async def count(self, *, user_id: int, filters: PerformanceFilter | None = None) -> int:
        check_ids(user_id=user_id)
        check_filters(filters)
        t = performance_daily
        stmt = (
            select(func.count())
            .select_from(t)
            .where(t.c.user_id == user_id, *self._conditions(filters))
        )

        async def op(session: AsyncSession) -> int:
            return int((await session.execute(stmt)).scalar_one())

        return await self._scope.run_read(op)

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
            check_date("start_date", filters.start_date, entity="PerformanceFilter")
            out.append(t.c.date >= filters.start_date)
        if filters.end_date is not None:
            check_date("end_date", filters.end_date, entity="PerformanceFilter")
            out.append(t.c.date <= filters.end_date)
        return [and_(*out)] if out else []
