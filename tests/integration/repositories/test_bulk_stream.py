"""bulk_upsert of an input longer than one chunk: streamed (generators, async iterators,
lists), last record of a key wins across chunks, another user's ad anywhere writes nothing.

The chunk is made small here so a few records span several chunks; the memory bound
itself is measured by ``ads-infra bench db`` (peak RSS of a million streamed rows).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.core.settings import DatabaseConfig
from ads_infra.database import DatabaseManager
from ads_infra.domain.entities import PerformanceRecord
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.repositories import PerformanceFilter
from ads_infra.repositories import RepositoryFactory, bulk
from tests.integration.repositories.conftest import make_tree

A, B = 4101, 4202
DAY = dt.date(2024, 2, 1)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 4)


def _records(ad_id: int, days: int, impressions: int = 10) -> Iterator[PerformanceRecord]:
    for d in range(days):
        yield PerformanceRecord(
            ad_id=ad_id, date=DAY + dt.timedelta(days=d), impressions=impressions + d,
            clicks=1, conversions=Decimal("0.5"), cost_micros=100, conversion_value_micros=7,
        )  # fmt: skip


async def _stored(factory: RepositoryFactory, user_id: int) -> dict[dt.date, int]:
    page = await factory.create_performance_repository().list(user_id=user_id, limit=1000)
    return {r.date: r.impressions for r in page.items}


async def test_a_generator_is_streamed_and_the_last_record_of_a_key_wins(
    factory: RepositoryFactory,
) -> None:
    tree = await make_tree(factory, A)
    assert tree.ad.id
    perf = factory.create_performance_repository()

    def records() -> Iterator[PerformanceRecord]:
        yield from _records(tree.ad.id or 0, 10)
        # Day 0 again, in a later chunk: this one wins.
        yield PerformanceRecord(ad_id=tree.ad.id or 0, date=DAY, impressions=999)

    assert await perf.bulk_upsert(records(), user_id=A) == 10
    stored = await _stored(factory, A)
    assert len(stored) == 10 and stored[DAY] == 999
    assert stored[DAY + dt.timedelta(days=9)] == 19
    # The same rows again, and then changed ones: still 10 keys.
    assert await perf.bulk_upsert(list(_records(tree.ad.id, 10)), user_id=A) == 10
    assert (await _stored(factory, A))[DAY] == 10
    assert await perf.bulk_upsert(_records(tree.ad.id, 10, impressions=50), user_id=A) == 10
    assert (await _stored(factory, A))[DAY] == 50


async def test_an_async_iterator_is_streamed(factory: RepositoryFactory) -> None:
    tree = await make_tree(factory, A)
    assert tree.ad.id

    async def records() -> AsyncIterator[PerformanceRecord]:
        for record in _records(tree.ad.id or 0, 9):
            yield record

    assert await factory.create_performance_repository().bulk_upsert(records(), user_id=A) == 9
    assert len(await _stored(factory, A)) == 9


async def test_another_users_ad_in_a_later_chunk_writes_nothing(
    factory: RepositoryFactory,
) -> None:
    mine, theirs = await make_tree(factory, A, "a"), await make_tree(factory, B, "b")
    assert mine.ad.id and theirs.ad.id

    def records() -> Iterator[PerformanceRecord]:
        yield from _records(mine.ad.id or 0, 9)
        yield from _records(theirs.ad.id or 0, 1)

    with pytest.raises(NotFoundError) as caught:
        await factory.create_performance_repository().bulk_upsert(records(), user_id=A)
    assert str(theirs.ad.id) in str(caught.value)
    assert await _stored(factory, A) == {} and await _stored(factory, B) == {}


async def test_a_bad_record_in_a_later_chunk_names_the_field_and_writes_nothing(
    factory: RepositoryFactory,
) -> None:
    tree = await make_tree(factory, A)
    assert tree.ad.id

    def records() -> Iterator[PerformanceRecord]:
        yield from _records(tree.ad.id or 0, 9)
        yield PerformanceRecord(ad_id=tree.ad.id or 0, date=DAY, impressions=1, clicks=5)

    with pytest.raises(ValidationError) as caught:
        await factory.create_performance_repository().bulk_upsert(records(), user_id=A)
    assert caught.value.field == "clicks"
    assert await _stored(factory, A) == {}


async def test_a_streamed_upsert_in_a_unit_of_work_is_seen_by_its_reads(
    factory: RepositoryFactory,
) -> None:
    tree = await make_tree(factory, A)
    assert tree.ad.id
    async with factory.unit_of_work() as uow:
        assert await uow.performance.bulk_upsert(_records(tree.ad.id, 7), user_id=A) == 7
        assert await uow.performance.count(user_id=A, filters=PerformanceFilter()) == 7
    assert len(await _stored(factory, A)) == 7


async def test_a_key_repeated_within_a_chunk_and_again_in_the_next_the_last_wins(
    factory: RepositoryFactory,
) -> None:
    """A chunk's own repeats are removed before the COPY; the positions that order a key
    across chunks are the records' places in the input, so they stay distinct."""
    tree = await make_tree(factory, A)
    ad_id = tree.ad.id or 0

    def at(day: int, impressions: int) -> PerformanceRecord:
        return PerformanceRecord(
            ad_id=ad_id, date=DAY + dt.timedelta(days=day), impressions=impressions
        )

    # Chunks of 4: [d0, d0, d1, d2] then [d2, d3].
    records = [at(0, 1), at(0, 2), at(1, 3), at(2, 4), at(2, 999), at(3, 5)]
    assert await factory.create_performance_repository().bulk_upsert(iter(records), user_id=A) == 4
    stored = await _stored(factory, A)
    assert [stored[DAY + dt.timedelta(days=d)] for d in range(4)] == [2, 3, 999, 5]


async def test_a_repeated_key_whose_last_record_is_the_stored_row_wins_whatever_the_join(
    db: DatabaseManager,
) -> None:
    """The stage hashed by the join hands a key's rows back latest first: the upsert
    must still end on the last record, also when that record equals the stored row
    (the IS DISTINCT FROM would skip it and let the earlier one through)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the staged upsert is PostgreSQL's")
    factory = RepositoryFactory(db)
    tree = await make_tree(factory, A)
    ad_id = tree.ad.id or 0
    perf = factory.create_performance_repository()
    await perf.bulk_upsert([PerformanceRecord(ad_id=ad_id, date=DAY, impressions=100)], user_id=A)

    async with db.engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        async with driver.transaction():
            # Many ads and a small analysed stage: the planner hashes the stage.
            columns = [
                r[0]
                for r in await driver.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'ads' AND column_name <> 'id'"
                )
            ]
            listed = ", ".join(columns)
            await driver.execute(
                f"INSERT INTO ads ({listed}) SELECT {listed} FROM ads, generate_series(1, 3000) "
                "WHERE id = $1",
                ad_id,
            )
            await driver.execute(bulk.STREAM_CREATE)
            await driver.execute(bulk.STREAM_TRUNCATE)
            # Input order: 5 first, then 100 (the stored value) last: 100 must win.
            await driver.copy_records_to_table(
                bulk.STREAM,
                records=[(0, ad_id, DAY, 5, 0, Decimal(0), 0, 0),
                         (1, ad_id, DAY, 100, 0, Decimal(0), 0, 0)],
                columns=bulk.STREAM_COLUMNS,
            )  # fmt: skip
            await driver.execute(f"ANALYZE ads; ANALYZE {bulk.STREAM}")
            await driver.execute(
                "SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off"
            )
            plan = "\n".join(
                r[0]
                for r in await driver.fetch(
                    f"EXPLAIN SELECT s.seq FROM {bulk.STREAM} s JOIN ads a ON a.id = s.ad_id"
                )
            )
            assert "Hash Join" in plan
            unordered = [
                r[0]
                for r in await driver.fetch(
                    f"SELECT s.seq FROM {bulk.STREAM} s JOIN ads a ON a.id = s.ad_id"
                )
            ]
            assert unordered == [1, 0]  # the premise: latest first
            assert await bulk.upsert_stage(driver, A, 2, None) == 1  # not known: asked
            stored = await driver.fetchval(
                "SELECT impressions FROM performance_daily WHERE ad_id = $1 AND date = $2",
                ad_id, DAY,
            )  # fmt: skip
            assert stored == 100


async def test_a_stream_slower_than_statement_timeout_is_written(
    migrated_postgres_url: str,
) -> None:
    """statement_timeout bounds requests, not how long the caller's input takes: the
    COPY of a slow stream goes on, and the connection's own timeout is untouched."""
    db = DatabaseManager(
        DatabaseConfig(
            url=migrated_postgres_url, pool_size=1, max_overflow=0, statement_timeout=0.3
        )
    )
    try:
        factory = RepositoryFactory(db)
        tree = await make_tree(factory, A)

        async def slow() -> AsyncIterator[PerformanceRecord]:
            for record in _records(tree.ad.id or 0, 24):
                await asyncio.sleep(0.05)  # 1.2 s in all, past the 0.3 s timeout
                yield record

        assert await factory.create_performance_repository().bulk_upsert(slow(), user_id=A) == 24
        assert len(await _stored(factory, A)) == 24

        async def setting(session: AsyncSession) -> str:
            return str((await session.execute(text("SHOW statement_timeout"))).scalar_one())

        assert await db.run(setting) == "300ms"  # the connection's own, untouched
    finally:
        await db.close()


@pytest.mark.parametrize("tracked", [3, 100_000])
async def test_a_key_repeated_in_a_later_chunk_is_found_with_few_or_many_keys_remembered(
    factory: RepositoryFactory, monkeypatch: pytest.MonkeyPatch, tracked: int
) -> None:
    """Keys are remembered while staging up to a bound; past it the stage is asked. Either
    way a key repeated in a later chunk ends on its last record."""
    monkeypatch.setattr(bulk, "MAX_TRACKED_KEYS", tracked)
    tree = await make_tree(factory, A)
    ad_id = tree.ad.id or 0
    perf = factory.create_performance_repository()
    assert await perf.bulk_upsert(_records(ad_id, 10), user_id=A) == 10

    def records() -> Iterator[PerformanceRecord]:
        stored = list(_records(ad_id, 10))
        yield PerformanceRecord(ad_id=ad_id, date=DAY, impressions=5)  # chunk 1: not the last
        yield from stored[1:]
        yield stored[0]  # day 0 again in chunk 3, as stored: this one wins

    assert await perf.bulk_upsert(records(), user_id=A) == 10
    assert (await _stored(factory, A))[DAY] == 10


@pytest.mark.parametrize("day_first", [False, True], ids=["by-ad-then-day", "by-day-then-ad"])
async def test_parts_in_key_order_are_known_not_to_repeat_past_the_remembered_keys(
    db: DatabaseManager, monkeypatch: pytest.MonkeyPatch, day_first: bool
) -> None:
    """Past MAX_TRACKED_KEYS, parts that each come wholly after the one before (by ad then
    day, or by day then ad) cannot share a key: the stage is not asked. Out of order, it
    is (here that question fails, so asking it shows)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the staged upsert is PostgreSQL's")
    factory = RepositoryFactory(db)
    monkeypatch.setattr(bulk, "MAX_TRACKED_KEYS", 3)
    monkeypatch.setattr(bulk, "REPEATED", "SELECT 1 / 0")
    ads = [(await make_tree(factory, A, name)).ad.id or 0 for name in ("t1", "t2")]
    keys = [(a, d) for a in sorted(ads) for d in range(6)]
    if day_first:
        keys.sort(key=lambda key: (key[1], key[0]))
    records = [
        PerformanceRecord(ad_id=a, date=DAY + dt.timedelta(days=d), impressions=d + 1)
        for a, d in keys
    ]
    perf = factory.create_performance_repository()
    assert await perf.bulk_upsert(iter(records), user_id=A) == 12
    stored = await perf.list(user_id=A, limit=100)
    assert sorted((r.ad_id, r.date, r.impressions) for r in stored.items) == sorted(
        (r.ad_id, r.date, r.impressions) for r in records
    )
    shuffled = [*records[6:], *records[:6]]  # no key repeated, but the parts out of order
    with pytest.raises(Exception, match="division by zero"):
        await perf.bulk_upsert(iter(shuffled), user_id=A)
