"""The streamed bulk upsert of performance rows: records read a chunk at a time, in bounded
memory, however many there are.

``PerformanceRepositoryImpl.bulk_upsert`` takes any iterable or async
iterable. What fits in one chunk goes the in-memory way (see
:mod:`.performance`); a longer input is streamed, in one transaction:

- PostgreSQL: one COPY into a connection-local staging table reads the
  chunks as they are checked (each row with its position in the input, so
  the last record for a key wins); the ads seen are then checked to be the
  user's, and one
  ``INSERT ... SELECT ... JOIN ads ... ON CONFLICT DO UPDATE`` writes the
  rows (user, campaign and group from the ad; unchanged rows not
  rewritten). It first runs without removing duplicate keys (the common
  case, no sort): a batch that repeats a key makes it fail, and it runs
  again from a savepoint, keeping the last record of each key;
- SQLite: each chunk is upserted in turn (a later chunk overwrites an
  earlier one, so the last record still wins), after the check of its ads;
  the keys are counted in a temporary table.

Only a chunk is ever held in memory (the input's own memory aside). An
input that can be iterated once (a generator, an async iterator) cannot be
run again after a transient failure: that failure is raised, and running
the upsert again is safe (it is idempotent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.domain.entities import PerformanceRecord
from ads_infra.domain.errors import NotFoundError

__all__ = ["CHUNK", "Records", "chunks", "stream_postgres", "stream_sqlite"]

Records = Iterable[PerformanceRecord] | AsyncIterable[PerformanceRecord]
Key = tuple[int, dt.date]
StageRow = tuple[int, dt.date, int, int, Decimal, int, int]

# Records held at once (a few MB of Python objects); each chunk costs a COPY.
CHUNK = 10_000

STREAM = "ads_infra_perf_stream"
STREAM_COLUMNS = (
    "seq", "ad_id", "date", "impressions", "clicks", "conversions", "cost_micros",
    "conversion_value_micros",
)  # fmt: skip
STREAM_CREATE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STREAM} (seq bigint NOT NULL, ad_id bigint NOT NULL, "
    "date date NOT NULL, impressions bigint NOT NULL, clicks bigint NOT NULL, "
    "conversions numeric(18, 4) NOT NULL, cost_micros bigint NOT NULL, "
    "conversion_value_micros bigint NOT NULL) ON COMMIT DELETE ROWS"
)
STREAM_TRUNCATE = f"TRUNCATE {STREAM}"
OWNED = "SELECT id FROM ads WHERE user_id = $1 AND id = ANY($2::bigint[])"
NOT_THE_USERS = (
    f"SELECT DISTINCT s.ad_id FROM {STREAM} s WHERE NOT EXISTS "  # noqa: S608 - constants only
    "(SELECT 1 FROM ads a WHERE a.id = s.ad_id AND a.user_id = $1) ORDER BY s.ad_id LIMIT 11"
)
# Distinct ads remembered while streaming, to check them by index after the COPY
# (a few MB at most); past that the stage is checked with one anti-join.
MAX_TRACKED_ADS = 100_000
_VALUES = ("user_id", "campaign_id", "group_id", "impressions", "clicks", "conversions",
           "cost_micros", "conversion_value_micros")  # fmt: skip
# Built from the module's own constants only, never from input.
_INSERT = (
    "INSERT INTO performance_daily AS p (ad_id, date, " + ", ".join(_VALUES) + ") "  # noqa: S608
    "SELECT s.ad_id, s.date, a.user_id, a.campaign_id, a.group_id, s.impressions, s.clicks, "
    "s.conversions, s.cost_micros, s.conversion_value_micros "
    "FROM {source} s JOIN ads a ON a.id = s.ad_id AND a.user_id = $1 "
    "ON CONFLICT (ad_id, date) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _VALUES)
    + " WHERE ("
    + ", ".join(f"p.{c}" for c in _VALUES)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"EXCLUDED.{c}" for c in _VALUES)
    + ")"
)
UPSERT_ALL = _INSERT.format(source=STREAM)
# The last record of each key (by its position in the input), counted as the keys written.
UPSERT_LAST = (
    f"WITH last AS (SELECT DISTINCT ON (ad_id, date) * FROM {STREAM} "  # noqa: S608
    "ORDER BY ad_id, date, seq DESC), written AS ("
    + _INSERT.format(source="last")
    + " RETURNING 1) SELECT count(*) FROM last"
)
CARDINALITY_VIOLATION = "21000"  # ON CONFLICT DO UPDATE met the same key twice


async def chunks(
    records: Records, rows_of: Any, user_id: int, size: int | None = None
) -> AsyncIterator[dict[Key, StageRow]]:
    """``records`` as checked, deduplicated chunks of at most ``size`` (default
    :data:`CHUNK`) keys; ``rows_of(records, user_id)`` checks one chunk's records."""
    size = size or CHUNK
    if isinstance(records, AsyncIterable):
        part: list[PerformanceRecord] = []
        async for record in records:
            part.append(record)
            if len(part) >= size:
                yield rows_of(part, user_id)
                part = []
        if part:
            yield rows_of(part, user_id)
        return
    iterator: Iterator[PerformanceRecord] = iter(records)
    while True:
        part = []
        for record in iterator:
            part.append(record)
            if len(part) >= size:
                break
        if not part:
            return
        yield rows_of(part, user_id)
        if len(part) < size:
            return


def _missing(ad_ids: list[int], user_id: int) -> NotFoundError:
    shown = ", ".join(map(str, ad_ids[:10])) + (" ..." if len(ad_ids) > 10 else "")
    return NotFoundError("ad", shown, user_id=user_id)


async def stream_postgres(
    session: AsyncSession,
    first: dict[Key, StageRow],
    rest: AsyncIterator[dict[Key, StageRow]],
    user_id: int,
) -> int:
    """One COPY of every chunk into the stage, the ads checked, one upsert; the number of
    distinct keys.

    The COPY reads the chunks as they are made, so checking the next chunk
    overlaps with the server storing the last one.
    """
    # Through the session, so its transaction is begun on this connection.
    await session.execute(text(STREAM_CREATE))
    conn = await session.connection()
    driver: Any = (await conn.get_raw_connection()).driver_connection
    await driver.execute(STREAM_TRUNCATE)
    pending = [first]
    del first  # only the chunk in hand is referenced: the memory bound
    ad_ids: set[int] = set()
    staged = 0
    too_many_ads = False

    async def rows() -> AsyncIterator[tuple[Any, ...]]:
        nonlocal staged, too_many_ads
        chunk: dict[Key, StageRow] | None = pending.pop()
        while chunk is not None:
            if not too_many_ads:
                ad_ids.update(ad_id for ad_id, _ in chunk)
                too_many_ads = len(ad_ids) > MAX_TRACKED_ADS
                if too_many_ads:
                    ad_ids.clear()
            for row in chunk.values():
                yield (staged, *row)
                staged += 1
            chunk = None
            chunk = await anext(rest, None)

    await driver.copy_records_to_table(STREAM, records=rows(), columns=STREAM_COLUMNS)
    if too_many_ads:  # more ads than are worth keeping in memory: ask the stage itself
        missing = [r[0] for r in await driver.fetch(NOT_THE_USERS, user_id)]
    else:
        ids = sorted(ad_ids)
        owned = {r[0] for r in await driver.fetch(OWNED, user_id, ids)}
        missing = [a for a in ids if a not in owned]
    if missing:
        raise _missing(missing, user_id)
    try:
        async with driver.transaction():  # a savepoint: a repeated key undoes only this try
            await driver.execute(UPSERT_ALL, user_id)
        return staged
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != CARDINALITY_VIOLATION:
            raise
    return int(await driver.fetchval(UPSERT_LAST, user_id))


async def stream_sqlite(
    session: AsyncSession,
    first: dict[Key, StageRow],
    rest: AsyncIterator[dict[Key, StageRow]],
    user_id: int,
    upsert_chunk: Any,
) -> int:
    """Upsert chunk after chunk (``upsert_chunk(session, chunk)`` checks its ads and writes
    it); the number of distinct keys, counted in a temporary table."""
    await session.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS ads_infra_perf_keys "
            "(ad_id INTEGER NOT NULL, date TEXT NOT NULL, PRIMARY KEY (ad_id, date))"
        )
    )
    await session.execute(text("DELETE FROM ads_infra_perf_keys"))
    count = text("INSERT OR IGNORE INTO ads_infra_perf_keys (ad_id, date) VALUES (:a, :d)")
    chunk: dict[Key, StageRow] | None = first
    del first
    while chunk is not None:
        await upsert_chunk(session, chunk)
        await session.execute(count, [{"a": a, "d": d.isoformat()} for a, d in chunk])
        chunk = None
        chunk = await anext(rest, None)
    found = await session.execute(text("SELECT count(*) FROM ads_infra_perf_keys"))
    await session.execute(text("DELETE FROM ads_infra_perf_keys"))
    return int(found.scalar_one())
