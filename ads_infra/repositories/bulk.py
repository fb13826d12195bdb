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
  rewritten). Whether a chunk repeats a key of an earlier one is found
  while staging (keys remembered, or chunks in key order: :class:`_Ascending`;
  else one ``GROUP BY`` on the stage): without repeats the stage is written
  as it is (no sort), with them only the last record of each key;
- SQLite: each chunk is upserted in turn (a later chunk overwrites an
  earlier one, so the last record still wins), after the check of its ads;
  the keys are counted in a temporary table.

Each chunk is checked as it is read, straight into the COPY's rows (its
position first). A plain iterable reaches the COPY as a plain iterator, so
asyncpg encodes row after row without an ``await`` each; an async iterable
goes through an async generator.

Only a chunk is ever held in memory (the input's own memory aside). An
input that can be iterated once (a generator, an async iterator) cannot be
run again after a transient failure: that failure is raised, and running
the upsert again is safe (it is idempotent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from decimal import Decimal
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.domain.entities import PerformanceRecord
from ads_infra.domain.errors import NotFoundError

__all__ = ["CHUNK", "Parts", "Records", "parts", "stream_postgres", "stream_sqlite", "upsert_stage"]

Records = Iterable[PerformanceRecord] | AsyncIterable[PerformanceRecord]
Key = tuple[int, dt.date]
StageRow = tuple[int, dt.date, int, int, Decimal, int, int]
Part = list[PerformanceRecord]
Parts = Iterator[Part] | AsyncIterator[Part]
# ``stage(part, user_id, seq)``: the part's checked rows by key (ad_id, date),
# deduplicated, each led by its record's position in the input (the part's first record
# is at ``seq``).
Stage = Callable[[Part, int, int], dict[Key, tuple[Any, ...]]]

# Records held at once. Small: a part's records live until it is staged, and in parts of
# thousands they outlived the young GC generations, so that full collections (each a
# walk of every object of the process) came every few parts and cost a streamed upsert
# more than its checks did.
CHUNK = 500

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
LIFT_TIMEOUT = "SET LOCAL statement_timeout = 0"  # for this transaction only
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
# Only for a stage without repeated keys. With one, ON CONFLICT's "cannot affect row a
# second time" cannot be relied on: a join that hashes the stage hands a key's rows back
# latest first, the latest is skipped by the IS DISTINCT FROM when it equals the stored
# row, and the earlier one is then written without an error.
UPSERT_ALL = _INSERT.format(source=STREAM)
# Whether the stage repeats a key, when the parts were too many to tell while staging.
REPEATED = f"SELECT EXISTS (SELECT FROM {STREAM} GROUP BY ad_id, date HAVING count(*) > 1)"  # noqa: S608
# Keys remembered while staging to tell whether a later part repeats one (about 15 MB
# at most); past that the stage is asked (REPEATED).
MAX_TRACKED_KEYS = 100_000
_AD_ID = itemgetter(0)  # of a key (ad_id, date)
_DAY_FIRST = itemgetter(1, 0)  # a key (ad_id, date) as (date, ad_id)


class _Ascending:
    """Whether each part so far came wholly after the one before in one key order, by ad
    then day or by day then ad (how exports are usually sorted): then no key can be in
    two parts, however many keys there are. It tells past :data:`MAX_TRACKED_KEYS` what
    remembering keys no longer can, for a min and a max per part.
    """

    def __init__(self) -> None:
        self._started = False
        # The largest key so far in each order; None once that order is broken.
        self._ad_first: Key | None = None
        self._day_first: tuple[dt.date, int] | None = None

    def follows(self, batch: dict[Key, Any]) -> bool:
        """Add a part's keys; whether the parts so far are still in one of the orders."""
        if not batch:
            return self.holds
        swapped = list(map(_DAY_FIRST, batch)) if self._day_first or not self._started else []
        if not self._started:
            self._started = True
            self._ad_first, self._day_first = max(batch), max(swapped)
            return True
        if self._ad_first is not None:
            self._ad_first = max(batch) if min(batch) > self._ad_first else None
        if self._day_first is not None:
            self._day_first = max(swapped) if min(swapped) > self._day_first else None
        return self.holds

    @property
    def holds(self) -> bool:
        return self._ad_first is not None or self._day_first is not None


# The last record of each key (by its position in the input), counted as the keys written.
UPSERT_LAST = (
    f"WITH last AS (SELECT DISTINCT ON (ad_id, date) * FROM {STREAM} "  # noqa: S608
    "ORDER BY ad_id, date, seq DESC), written AS ("
    + _INSERT.format(source="last")
    + " RETURNING 1) SELECT count(*) FROM last"
)


def parts(records: Records, size: int | None = None) -> Parts:
    """``records`` as lists of at most ``size`` (default :data:`CHUNK`) records: a plain
    iterator for a plain iterable, an async one for an async iterable. Unchecked."""
    size = size or CHUNK
    if isinstance(records, AsyncIterable):
        return _async_parts(records, size)
    return _parts(iter(records), size)


def _parts(iterator: Iterator[PerformanceRecord], size: int) -> Iterator[Part]:
    while True:
        part = list(islice(iterator, size))
        if not part:
            return
        yield part
        if len(part) < size:
            return


async def _async_parts(records: AsyncIterable[PerformanceRecord], size: int) -> AsyncIterator[Part]:
    part: Part = []
    async for record in records:
        part.append(record)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


def _missing(ad_ids: list[int], user_id: int) -> NotFoundError:
    shown = ", ".join(map(str, ad_ids[:10])) + (" ..." if len(ad_ids) > 10 else "")
    return NotFoundError("ad", shown, user_id=user_id)


async def stream_postgres(
    session: AsyncSession, head: list[Part], rest: Parts, user_id: int, stage: Stage
) -> int:
    """One COPY of every part, as ``stage`` checks it, into the stage table; the ads
    checked; one upsert; the number of distinct keys.

    The COPY reads the parts as they are made, so checking the next part
    overlaps with the server storing the last one.
    """
    # Through the session, so its transaction is begun on this connection.
    await session.execute(text(STREAM_CREATE))
    conn = await session.connection()
    driver: Any = (await conn.get_raw_connection()).driver_connection
    await driver.execute(STREAM_TRUNCATE)
    ad_ids: set[int] = set()
    read = staged = 0
    too_many_ads = False
    keys: set[tuple[int, dt.date]] | None = set()  # None: too many to remember
    repeated = False
    order = _Ascending()
    ascending = True

    def staged_rows(part: Part) -> list[tuple[Any, ...]]:
        nonlocal read, staged, too_many_ads, keys, repeated, ascending
        # Positions in the input (not in the stage, which a part's repeated keys shorten):
        # they order the records of a key across parts.
        batch = stage(part, user_id, read)
        read += len(part)
        staged += len(batch)
        if keys is not None and not repeated:  # a part's own repeats are removed already
            known = len(keys)
            keys.update(batch)  # the batch's own key tuples: none built again
            repeated = len(keys) - known < len(batch)
            if len(keys) > MAX_TRACKED_KEYS:
                keys = None
        if ascending:
            ascending = order.follows(batch)
        if not too_many_ads:
            ad_ids.update(map(_AD_ID, batch))
            too_many_ads = len(ad_ids) > MAX_TRACKED_ADS
            if too_many_ads:
                ad_ids.clear()
        return list(batch.values())

    def taken() -> Iterator[Part]:
        while head:  # each part dropped once staged: the memory bound
            yield head.pop(0)

    records: Iterable[tuple[Any, ...]] | AsyncIterator[tuple[Any, ...]]
    if isinstance(rest, AsyncIterator):

        async def async_rows() -> AsyncIterator[tuple[Any, ...]]:
            for part in taken():
                for row in staged_rows(part):
                    yield row
            async for part in rest:
                for row in staged_rows(part):
                    yield row

        records = async_rows()
    else:
        records = chain.from_iterable(map(staged_rows, chain(taken(), rest)))
    # The COPY lasts as long as the input takes to produce (a slow source, a long
    # stream), and the upsert as long as the input is large: statement_timeout, a
    # bound for requests, is lifted for this transaction alone (a caller bounds a
    # bulk load with its own deadline: cancelling it cancels the statement).
    await driver.execute(LIFT_TIMEOUT)
    await driver.copy_records_to_table(STREAM, records=records, columns=STREAM_COLUMNS)
    if too_many_ads:  # more ads than are worth keeping in memory: ask the stage itself
        missing = [r[0] for r in await driver.fetch(NOT_THE_USERS, user_id)]
    else:
        ids = sorted(ad_ids)
        owned = {r[0] for r in await driver.fetch(OWNED, user_id, ids)}
        missing = [a for a in ids if a not in owned]
    if missing:
        raise _missing(missing, user_id)
    if keys is not None:
        known: bool | None = repeated
    else:  # too many keys to remember: the order of the parts may still tell
        known = False if ascending else None
    return await upsert_stage(driver, user_id, staged, known)


async def upsert_stage(driver: Any, user_id: int, staged: int, repeated: bool | None) -> int:
    """Write the ``staged`` rows of the stage table, the last of each key by input
    position; the number of distinct keys. ``repeated``: whether the stage repeats a
    key (None: not known, the stage is asked). ``driver`` is in a transaction."""
    if repeated is None:
        repeated = bool(await driver.fetchval(REPEATED))
    if repeated:
        return int(await driver.fetchval(UPSERT_LAST, user_id))
    await driver.execute(UPSERT_ALL, user_id)
    return staged


async def stream_sqlite(
    session: AsyncSession,
    head: list[Part],
    rest: Parts,
    user_id: int,
    upsert_chunk: Callable[[AsyncSession, Part], Any],
) -> int:
    """Upsert part after part (``upsert_chunk(session, part)`` checks it, checks its ads and
    writes it, returning its keys); the number of distinct keys, counted in a temporary
    table."""
    await session.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS ads_infra_perf_keys "
            "(ad_id INTEGER NOT NULL, date TEXT NOT NULL, PRIMARY KEY (ad_id, date))"
        )
    )
    await session.execute(text("DELETE FROM ads_infra_perf_keys"))
    count = text("INSERT OR IGNORE INTO ads_infra_perf_keys (ad_id, date) VALUES (:a, :d)")

    async def each() -> AsyncIterator[Part]:
        while head:
            yield head.pop(0)
        if isinstance(rest, AsyncIterator):
            async for part in rest:
                yield part
        else:
            for part in rest:
                yield part

    async for part in each():
        keys: Iterable[Key] = await upsert_chunk(session, part)
        await session.execute(count, [{"a": a, "d": d.isoformat()} for a, d in keys])
    found = await session.execute(text("SELECT count(*) FROM ads_infra_perf_keys"))
    await session.execute(text("DELETE FROM ads_infra_perf_keys"))
    return int(found.scalar_one())
