"""bulk_upsert: idempotent on (ad_id, date), last wins in a batch, nothing lost when concurrent."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest

from ads_infra.domain.entities import PerformanceRecord
from ads_infra.domain.errors import NotFoundError, ValidationError
from ads_infra.domain.repositories import PerformanceFilter
from ads_infra.repositories import RepositoryFactory
from tests.integration.repositories.conftest import make_tree

USER = 7
START = dt.date(2024, 1, 1)


def rows(ad_ids: list[int], days: int, seed: int = 0) -> list[PerformanceRecord]:
    return [
        PerformanceRecord(
            ad_id=ad_id,
            date=START + dt.timedelta(days=d),
            impressions=1000 + d + seed,
            clicks=10 + d % 7,
            conversions=Decimal(d % 3) / 2,
            cost_micros=1_000_000 * (d + 1) + seed,
            conversion_value_micros=3_000_000 * (d % 3),
        )
        for ad_id in ad_ids
        for d in range(days)
    ]


async def all_rows(factory: RepositoryFactory, user_id: int = USER) -> list[PerformanceRecord]:
    repo = factory.create_performance_repository()
    out: list[PerformanceRecord] = []
    cursor = None
    while True:
        page = await repo.list(user_id=user_id, order_by="ad_id", limit=1000, cursor=cursor)
        out.extend(page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def two_ads(factory: RepositoryFactory) -> list[int]:
    a = await make_tree(factory, USER, "a")
    b = await make_tree(factory, USER, "b")
    assert a.ad.id and b.ad.id
    return [a.ad.id, b.ad.id]


async def test_same_rows_twice_leave_the_same_table(factory: RepositoryFactory) -> None:
    ad_ids = await two_ads(factory)
    repo = factory.create_performance_repository()
    batch = rows(ad_ids, 60)
    assert await repo.bulk_upsert(batch, user_id=USER) == 120
    first = await all_rows(factory)
    assert await repo.bulk_upsert(batch, user_id=USER) == 120
    assert await all_rows(factory) == first
    assert len(first) == 120
    # The stored rows are the records, with campaign and group filled from the ad.
    stored = {(r.ad_id, r.date): r for r in first}
    for r in batch:
        got = stored[(r.ad_id, r.date)]
        values = ("impressions", "clicks", "conversions", "cost_micros", "conversion_value_micros")
        assert [getattr(got, v) for v in values] == [getattr(r, v) for v in values]
        assert got.user_id == USER and got.campaign_id and got.group_id


async def test_updates_replace_values_and_duplicates_in_a_batch_last_wins(
    factory: RepositoryFactory,
) -> None:
    ad_ids = await two_ads(factory)
    repo = factory.create_performance_repository()
    await repo.bulk_upsert(rows(ad_ids, 5), user_id=USER)
    batch = [
        PerformanceRecord(ad_id=ad_ids[0], date=START, impressions=1, cost_micros=1),
        PerformanceRecord(ad_id=ad_ids[0], date=START, impressions=2, cost_micros=2),
        PerformanceRecord(ad_id=ad_ids[0], date=START + dt.timedelta(days=30), impressions=3),
        PerformanceRecord(ad_id=ad_ids[0], date=START, impressions=9, cost_micros=9),  # wins
    ]
    assert await repo.bulk_upsert(batch, user_id=USER) == 2
    got = await repo.get(ad_ids[0], START, user_id=USER)
    assert got is not None and (got.impressions, got.cost_micros, got.clicks) == (9, 9, 0)
    assert await repo.count(user_id=USER) == 11
    assert await repo.count(user_id=USER, filters=PerformanceFilter(ad_id=ad_ids[1])) == 5


async def test_concurrent_overlapping_upserts_lose_nothing(factory: RepositoryFactory) -> None:
    ad_ids = await two_ads(factory)
    repo = factory.create_performance_repository()
    # Four writers, each 40 days of both ads, windows overlapping by 20 days.
    batches = [
        [r for r in rows(ad_ids, 100, seed=w) if 20 * w <= (r.date - START).days < 20 * w + 40]
        for w in range(4)
    ]
    await asyncio.gather(*(repo.bulk_upsert(b, user_id=USER) for b in batches))
    stored = {(r.ad_id, r.date): r for r in await all_rows(factory)}
    expected = {(r.ad_id, r.date) for b in batches for r in b}
    assert set(stored) == expected  # every key written by anyone is there
    for key, r in stored.items():
        # Each row is exactly one writer's version, never a mix.
        writers = [w for w, b in enumerate(batches) for x in b if (x.ad_id, x.date) == key]
        assert r.impressions - 1000 - (r.date - START).days in writers
        assert r.cost_micros % 1_000_000 == r.impressions - 1000 - (r.date - START).days


async def test_bad_records_name_the_field_and_write_nothing(factory: RepositoryFactory) -> None:
    ad_ids = await two_ads(factory)
    repo = factory.create_performance_repository()
    good = rows(ad_ids, 3)
    for bad, field in (
        (PerformanceRecord(ad_id=ad_ids[0], date=START, cost_micros=-1), "cost_micros"),
        (PerformanceRecord(ad_id=ad_ids[0], date=START, impressions=1, clicks=5), "clicks"),
        (PerformanceRecord(ad_id=ad_ids[0], date=START, conversions=Decimal(-2)), "conversions"),
        (PerformanceRecord(ad_id=ad_ids[0], date="2024-01-01"), "date"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValidationError) as exc:
            await repo.bulk_upsert([*good, bad], user_id=USER)
        assert exc.value.field == field
    with pytest.raises(NotFoundError, match="999999"):
        await repo.bulk_upsert([*good, PerformanceRecord(ad_id=999999, date=START)], user_id=USER)
    assert await repo.count(user_id=USER) == 0
    assert await repo.bulk_upsert([], user_id=USER) == 0


async def test_upsert_one_and_delete_a_range(factory: RepositoryFactory) -> None:
    ad_ids = await two_ads(factory)
    repo = factory.create_performance_repository()
    stored = await repo.upsert(
        PerformanceRecord(ad_id=ad_ids[0], date=START, impressions=5, conversions=Decimal("1.25")),
        user_id=USER,
    )
    assert stored.conversions == Decimal("1.25") and stored.user_id == USER
    await repo.bulk_upsert(rows(ad_ids, 10), user_id=USER)
    window = PerformanceFilter(
        start_date=START + dt.timedelta(days=2), end_date=START + dt.timedelta(days=4)
    )
    assert await repo.count(user_id=USER, filters=window) == 6
    assert await repo.delete(user_id=USER, filters=window) == 6
    assert await repo.count(user_id=USER) == 14


async def test_two_upserts_in_one_unit_of_work(factory: RepositoryFactory) -> None:
    ad_ids = await two_ads(factory)
    async with factory.unit_of_work() as uow:
        await uow.performance.bulk_upsert(rows(ad_ids, 10), user_id=USER)
        await uow.performance.bulk_upsert(rows(ad_ids[:1], 15, seed=5), user_id=USER)
        assert await uow.performance.count(user_id=USER) == 25
    got = await factory.create_performance_repository().get(ad_ids[0], START, user_id=USER)
    assert got is not None and got.impressions == 1005  # the second batch's value
    assert await factory.create_performance_repository().count(user_id=USER) == 25


async def test_a_copy_that_collides_with_a_concurrent_writer_falls_back_to_the_upsert(
    postgres_url: str,
) -> None:
    """B's straight COPY waits on A's uncommitted keys, then fails: B's savepoint and upsert win."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from ads_infra.database import migrate
    from tests.integration.repositories.conftest import make_db

    db = make_db(postgres_url)
    try:
        await migrate.upgrade(db)
        factory = RepositoryFactory(db)
        ad_ids = await two_ads(factory)
        first, second = rows(ad_ids, 10), rows(ad_ids[:1], 20, seed=7)
        dsn = make_url(postgres_url).set(drivername="postgresql")
        admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            async with factory.unit_of_work() as a:
                await a.performance.bulk_upsert(
                    first, user_id=USER
                )  # COPY straight in, uncommitted
                b = asyncio.create_task(
                    factory.create_performance_repository().bulk_upsert(second, user_id=USER)
                )
                while not await admin.fetchval(  # until B waits on A's row locks
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                    "AND wait_event_type = 'Lock'",
                    dsn.database,
                ):
                    assert not b.done(), b.exception()
                    await asyncio.sleep(0.02)
            assert await b == 20
        finally:
            await admin.close()
        stored = {(r.ad_id, r.date): r for r in await all_rows(factory)}
        assert len(stored) == 30  # 10 + 10 for the second ad, 20 for the first
        assert all(stored[(r.ad_id, r.date)].impressions == r.impressions for r in second)
        assert all(
            stored[(r.ad_id, r.date)].impressions == r.impressions
            for r in first
            if r.ad_id == ad_ids[1]
        )
    finally:
        await db.close()


class Count(int):
    """An int subclass, as some data libraries hand out."""


class Day(dt.date):
    """A date subclass that is not a datetime."""


async def test_values_the_columns_cannot_hold_exactly_name_the_field_and_write_nothing(
    factory: RepositoryFactory,
) -> None:
    ad_ids = await two_ads(factory)
    repo = factory.create_performance_repository()
    good = rows(ad_ids, 3)

    def bad(**kw: object) -> PerformanceRecord:
        return PerformanceRecord(**{"ad_id": ad_ids[0], "date": START, **kw})  # type: ignore[arg-type]

    for record, field in (
        # PostgreSQL would round to 0.0002, SQLite to 0.0001.
        (bad(conversions=Decimal("0.00015")), "conversions"),
        # PostgreSQL: numeric field overflow; SQLite: stored as an inexact double.
        (bad(conversions=Decimal("1e15")), "conversions"),
        (bad(impressions=2**63), "impressions"),
        (bad(impressions=2**63 - 1, clicks=2**63), "clicks"),
        (bad(ad_id=2**63), "ad_id"),
        (bad(cost_micros=2**63), "cost_micros"),
        # Fails the fast check on impressions' type, the validator on clicks.
        (bad(impressions=Count(5), clicks=-1), "clicks"),
    ):
        with pytest.raises(ValidationError) as exc:
            await repo.bulk_upsert([*good, record], user_id=USER)
        assert exc.value.field == field, exc.value
    assert await repo.count(user_id=USER) == 0


async def test_values_the_validator_accepts_are_stored_even_if_the_fast_check_is_stricter(
    factory: RepositoryFactory,
) -> None:
    ad_ids = await two_ads(factory)
    repo = factory.create_performance_repository()
    top = Decimal("99999999999.9999")  # the largest conversions both backends hold exactly
    record = PerformanceRecord(
        ad_id=Count(ad_ids[0]), date=Day(2024, 1, 5), impressions=Count(2**63 - 1),
        clicks=Count(3), conversions=top, cost_micros=Count(7), conversion_value_micros=Count(9),
    )  # fmt: skip
    assert await repo.bulk_upsert([record], user_id=USER) == 1
    stored = await repo.get(ad_ids[0], dt.date(2024, 1, 5), user_id=USER)
    assert stored is not None
    assert (stored.impressions, stored.clicks, stored.conversions) == (2**63 - 1, 3, top)
    assert (stored.cost_micros, stored.conversion_value_micros) == (7, 9)


async def test_a_datetime_where_a_date_is_expected_is_refused_by_name(
    factory: RepositoryFactory,
) -> None:
    ad_ids = await two_ads(factory)
    repo = factory.create_performance_repository()
    await repo.bulk_upsert(rows(ad_ids, 10), user_id=USER)
    moment = dt.datetime(2024, 1, 5)
    for flt, field in (
        (PerformanceFilter(start_date=moment), "start_date"),
        (PerformanceFilter(start_date=START, end_date=moment), "end_date"),
    ):
        for call in (repo.list, repo.count, repo.delete):
            with pytest.raises(ValidationError, match=r"not a datetime") as exc:
                await call(user_id=USER, filters=flt)
            assert exc.value.field == field
    with pytest.raises(ValidationError, match=r"\.date\(\)") as exc:
        await repo.get(ad_ids[0], moment, user_id=USER)
    assert exc.value.field == "day"
    assert await repo.count(user_id=USER) == 20  # the refused delete deleted nothing
    assert await repo.get(ad_ids[0], moment.date(), user_id=USER) is not None
