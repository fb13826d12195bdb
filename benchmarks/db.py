"""``ads-infra bench db``: the repositories against raw asyncpg and a plain SQLAlchemy ORM repo.

Measured in one process, against one PostgreSQL database created for the run
(on the server of ADS_BENCH_DATABASE_URL, else ADS_TEST_DATABASE_URL, else
postgresql+asyncpg://postgres@127.0.0.1:5432/test) and dropped at the end:

- get_by_id: ``AdsRepositoryImpl.get_by_id`` (no cache) against raw asyncpg
  (a pool of the same size, the same SELECT as a prepared statement through
  ``fetchrow``) and against a plain ORM repository (``session.get`` on a
  mapped class, owner checked after the load), at the same concurrency;
- cached get_by_id: the same repository with a memory CacheManager, against
  itself uncached;
- bulk_upsert of 100,000 daily rows (20,000 with ``--quick``) into an empty
  table, against raw asyncpg ``copy_records_to_table`` of the same rows (no
  checks, no upsert semantics: the floor); then the same rows with every
  value changed (the staging + ON CONFLICT path), and the same rows again;
- read replicas and the overhead of routing reads (:mod:`benchmarks.db_topology`).

Each contender runs several interleaved rounds and the best round counts,
so a noisy neighbour on the shared machine hurts every side alike.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from ads_infra.cache import CacheConfig, CacheManager
from ads_infra.core.settings import DatabaseConfig
from ads_infra.database import DatabaseManager, migrate
from ads_infra.database.tables import ads, performance_daily
from ads_infra.domain.entities import Ad, AdGroup, Campaign, PerformanceRecord
from ads_infra.repositories import RepositoryFactory
from ads_infra.repositories.performance import COLUMNS
from benchmarks import db_topology
from benchmarks.report import Measurement, measure_ops

AREA = "db"
CONCURRENCY = 16
USER = 42
DAYS = 100
START = dt.date(2024, 1, 1)

Op = Callable[[], Awaitable[Any]]


class _Base(DeclarativeBase):
    pass


class AdRow(_Base):
    """The plain ORM peer: the same table, mapped."""

    __table__ = ads

    if TYPE_CHECKING:
        user_id: int


def _server_url() -> str:
    return os.environ.get(
        "ADS_BENCH_DATABASE_URL",
        os.environ.get(
            "ADS_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _best(contenders: dict[str, Op], *, operations: int, rounds: int) -> dict[str, float]:
    """Best ops/s of each contender over interleaved rounds, rotating who goes first."""
    best = dict.fromkeys(contenders, 0.0)
    order = list(contenders)
    for round_no in range(rounds):
        shift = round_no % len(order)
        for name in order[shift:] + order[:shift]:
            ops = await measure_ops(
                contenders[name], operations=operations, concurrency=CONCURRENCY, warmup=20
            )
            best[name] = max(best[name], ops)
    return best


async def _seed(factory: RepositoryFactory, ad_count: int) -> list[int]:
    campaign = await factory.create_campaign_repository().create(
        Campaign(user_id=USER, name="bench", daily_budget_micros=100_000_000)
    )
    assert campaign.id is not None
    group = await factory.create_group_repository().create(
        AdGroup(user_id=USER, campaign_id=campaign.id, name="bench", targeting={"geo": ["US"]})
    )
    assert group.id is not None
    ad_ids: list[int] = []
    for start in range(0, ad_count, 500):
        async with factory.unit_of_work() as uow:
            for i in range(start, min(start + 500, ad_count)):
                ad = await uow.ads.create(
                    Ad(user_id=USER, campaign_id=campaign.id, group_id=group.id, name=f"ad {i}",
                       headline="Save 30% on summer shoes today only",
                       description="Free shipping on orders over $50. Limited time offer.",
                       final_url="https://shop.example.com/summer?utm_source=ads",
                       metadata={"tags": ["summer", "shoes"], "score": 0.87})
                )  # fmt: skip
                assert ad.id is not None
                ad_ids.append(ad.id)
    return ad_ids


def _records(ad_ids: list[int], days: int) -> list[PerformanceRecord]:
    rng = random.Random(7)
    out = []
    for ad_id in ad_ids:
        for d in range(days):
            impressions = rng.randint(100, 10_000)
            clicks = rng.randint(0, impressions // 20)
            out.append(
                PerformanceRecord(
                    ad_id=ad_id, date=START + dt.timedelta(days=d), impressions=impressions,
                    clicks=clicks, conversions=Decimal(rng.randint(0, 40)) / 4,
                    cost_micros=clicks * rng.randint(100_000, 2_000_000),
                    conversion_value_micros=rng.randint(0, 50_000_000),
                )
            )  # fmt: skip
    return out


async def _bench_get_by_id(
    url: str, factory: RepositoryFactory, ad_ids: list[int], operations: int, rounds: int
) -> list[Measurement]:
    repo = factory.create_ads_repository()
    cached_repo = RepositoryFactory(
        factory.db_manager, CacheManager(CacheConfig(max_size=len(ad_ids) * 2))
    ).create_ads_repository()
    stmt = (
        select(ads)
        .where(ads.c.id == 0, ads.c.user_id == 0)
        .compile(dialect=factory.db_manager.engine.dialect)
    )
    raw_sql = str(stmt)  # the asyncpg dialect renders $1, $2: the very same SQL text
    pool = await asyncpg.create_pool(_dsn(url), min_size=CONCURRENCY, max_size=CONCURRENCY)
    orm_engine_db = DatabaseManager(
        DatabaseConfig(url=url, pool_size=CONCURRENCY, max_overflow=0, pool_pre_ping=False)
    )
    sessions = async_sessionmaker(orm_engine_db.engine, expire_on_commit=False)
    ids = itertools.cycle(ad_ids)

    async def ours() -> Any:
        ad = await repo.get_by_id(next(ids), user_id=USER)
        assert ad is not None

    async def ours_cached() -> Any:
        ad = await cached_repo.get_by_id(next(ids), user_id=USER)
        assert ad is not None

    async def raw() -> Any:
        row = await pool.fetchrow(raw_sql, next(ids), USER)
        assert row is not None

    async def orm() -> Any:
        session: AsyncSession
        async with sessions() as session:
            row = await session.get(AdRow, next(ids))
            assert row is not None and row.user_id == USER

    try:
        for ad_id in ad_ids:  # warm the cache: the cached figure is for hits
            await cached_repo.get_by_id(ad_id, user_id=USER)
        best = await _best(
            {"ours": ours, "asyncpg": raw, "orm": orm, "cached": ours_cached},
            operations=operations,
            rounds=rounds,
        )
    finally:
        await pool.close()
        await orm_engine_db.close()
    return [
        Measurement(
            AREA, "get_by_id (no cache)", best["ours"], "asyncpg prepared fetchrow",
            best["asyncpg"], peers={"SQLAlchemy ORM session.get": best["orm"]},
            target=0.5, peer_target=1.5, note=f"concurrency {CONCURRENCY}",
        ),
        Measurement(
            AREA, "get_by_id cached (memory)", best["cached"], "get_by_id uncached",
            best["ours"], target=5.0, note="cache hits",
        ),
    ]  # fmt: skip


async def _bench_bulk_upsert(
    url: str, factory: RepositoryFactory, ad_ids: list[int], rows: int, rounds: int
) -> list[Measurement]:
    days = DAYS
    per_ad = max(1, rows // days)
    records = _records(ad_ids[:per_ad], days)
    changed = [dataclasses.replace(r, impressions=r.impressions + 1) for r in records]
    perf = factory.create_performance_repository()
    tuples = [
        (r.ad_id, r.date, USER, 1, 1, r.impressions, r.clicks, r.conversions, r.cost_micros,
         r.conversion_value_micros)
        for r in records
    ]  # fmt: skip
    conn = await asyncpg.connect(_dsn(url))
    # campaign_id/group_id of the raw rows must satisfy nothing (no FK on them): same width.
    first_ad = await conn.fetchrow("SELECT campaign_id, group_id FROM ads WHERE id = $1", ad_ids[0])
    assert first_ad is not None
    tuples = [(*t[:3], first_ad[0], first_ad[1], *t[5:]) for t in tuples]
    best_ours = best_raw = best_again = best_changed = 0.0
    try:
        for _ in range(rounds):
            await conn.execute(f"TRUNCATE {performance_daily.name}")
            started = time.perf_counter()
            await conn.copy_records_to_table(
                performance_daily.name, records=tuples, columns=COLUMNS
            )
            best_raw = max(best_raw, len(tuples) / (time.perf_counter() - started))

            await conn.execute(f"TRUNCATE {performance_daily.name}")
            started = time.perf_counter()
            written = await perf.bulk_upsert(records, user_id=USER)
            best_ours = max(best_ours, len(records) / (time.perf_counter() - started))
            assert written == len(records)

            started = time.perf_counter()
            await perf.bulk_upsert(records, user_id=USER)
            best_again = max(best_again, len(records) / (time.perf_counter() - started))

            started = time.perf_counter()
            await perf.bulk_upsert(changed, user_id=USER)
            best_changed = max(best_changed, len(records) / (time.perf_counter() - started))
        await conn.execute(f"TRUNCATE {performance_daily.name}")
    finally:
        await conn.close()
    return [
        Measurement(
            AREA, f"bulk_upsert {len(records):,} rows (new keys)", best_ours,
            "asyncpg COPY into the table", best_raw, unit="rows/s", target=0.5,
            note="checks, ownership, savepointed COPY straight into the table",
        ),
        Measurement(
            AREA, f"bulk_upsert {len(records):,} rows (every row changed)", best_changed,
            "asyncpg COPY into the table", best_raw, unit="rows/s",
            note="staging COPY + INSERT ... ON CONFLICT DO UPDATE of every row",
        ),
        Measurement(
            AREA, f"bulk_upsert {len(records):,} rows (same rows again)", best_again,
            "asyncpg COPY into the table", best_raw, unit="rows/s",
            note="idempotent re-run: unchanged rows are not rewritten",
        ),
    ]  # fmt: skip


async def run(*, quick: bool) -> list[Measurement]:
    server = _server_url()
    name = f"ads_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    # No pre-ping on any side (asyncpg's pool does none): same pool policy for all contenders.
    db = DatabaseManager(
        DatabaseConfig(url=url, pool_size=CONCURRENCY, max_overflow=0, pool_pre_ping=False)
    )
    try:
        await migrate.upgrade(db)
        factory = RepositoryFactory(db)
        rows = 20_000 if quick else 100_000
        ad_ids = await _seed(factory, max(500, rows // DAYS))
        results = await _bench_get_by_id(
            url, factory, ad_ids, operations=1_500 if quick else 5_000, rounds=3
        )
        results += await _bench_bulk_upsert(url, factory, ad_ids, rows, rounds=2 if quick else 3)
        results += await db_topology.run(url, quick=quick)
        return results
    finally:
        await db.close()
        admin = await asyncpg.connect(_dsn(server))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
