"""The ``db`` area's topology rows: read replicas and the cost of routing reads.

- read-heavy throughput with one streaming replica against the same
  workload on the primary alone: a private primary and its replica
  (``pg_basebackup -R``, both on this machine) are started for the run, the
  same repositories read ``get_by_id`` (uncached), ``list`` and ``count`` at
  the same concurrency, each operation a task of its own (a request); a
  second row adds 5% writes: the task that wrote reads the primary until the
  replica has replayed its write (read-your-writes), the others go on reading
  the replica;
- the overhead of routing when no replica is configured, against the direct
  calls the repositories made before routing existed: ``run_read`` against
  ``run`` for the same read, and the driver path of ``get_by_id`` and
  ``list`` (a ``fetchrow`` through ``run_read_driver``) against the same
  ``fetchrow`` on the engine's pool without the router (``on_driver``).
  The two sides of each row run the same code but the routing, so the
  difference is small next to a shared machine's noise: they run in pairs
  of short rounds, each pair alternating which side goes first, and the
  row's ratio is the median of the per-pair ratios (a real overhead is in
  every pair; a noisy stretch moves a few pairs, not the median).

Both servers share this machine's cores: a replica here adds no CPU, so the
first ratio says what routing costs or saves on one host, not what a
replica on its own host would add.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import random
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.core.settings import DatabaseConfig
from ads_infra.database import DatabaseManager, migrate
from ads_infra.database.direct import on_driver
from ads_infra.database.tables import ads
from ads_infra.domain.entities import Ad, AdGroup, Campaign
from ads_infra.repositories import RepositoryFactory
from benchmarks.report import Measurement, measure_ops
from tests.pg_servers import Cluster, missing_programs

__all__ = ["run"]

AREA = "db"
CONCURRENCY = 16
USER = 77
Op = Callable[[], Awaitable[Any]]


async def _best(contenders: dict[str, Op], *, operations: int, rounds: int) -> dict[str, float]:
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


async def _paired(ours: Op, baseline: Op, *, operations: int, pairs: int) -> tuple[float, float]:
    """(ours, baseline) in ops/s from ``pairs`` back-to-back pairs of rounds, alternating
    which side goes first: the baseline is its median round, ours that times the median of
    the per-pair ratios (what the row's ratio then is)."""
    for op in (ours, baseline):  # warm connections, statement caches and code paths
        await measure_ops(op, operations=max(200, CONCURRENCY), concurrency=CONCURRENCY)
    ratios: list[float] = []
    rates: list[float] = []
    for pair in range(pairs):
        sides = (ours, baseline) if pair % 2 == 0 else (baseline, ours)
        first, second = [
            await measure_ops(op, operations=operations, concurrency=CONCURRENCY) for op in sides
        ]
        ours_rate, baseline_rate = (first, second) if pair % 2 == 0 else (second, first)
        ratios.append(ours_rate / baseline_rate)
        rates.append(baseline_rate)
    baseline_rate = statistics.median(rates)
    return baseline_rate * statistics.median(ratios), baseline_rate


def _config(url: str, replicas: list[str] | None = None) -> DatabaseConfig:
    return DatabaseConfig(
        url=url,
        replica_urls=replicas or [],
        pool_size=CONCURRENCY,
        max_overflow=0,
        pool_pre_ping=False,
        replica_check_interval=0.2,
    )


async def _seed(factory: RepositoryFactory, count: int) -> list[int]:
    campaign = await factory.create_campaign_repository().create(
        Campaign(user_id=USER, name="topology", daily_budget_micros=1_000_000)
    )
    assert campaign.id is not None
    group = await factory.create_group_repository().create(
        AdGroup(user_id=USER, campaign_id=campaign.id, name="topology")
    )
    assert group.id is not None
    ids: list[int] = []
    async with factory.unit_of_work() as uow:
        for i in range(count):
            ad = await uow.ads.create(
                Ad(user_id=USER, campaign_id=campaign.id, group_id=group.id, name=f"ad {i}",
                   headline="Summer sale", final_url="https://shop.example.com/")
            )  # fmt: skip
            assert ad.id is not None
            ids.append(ad.id)
    return ids


def _read_mix(factory: RepositoryFactory, ids: list[int], writes: float) -> Op:
    repo = factory.create_ads_repository()
    ad_ids = itertools.cycle(ids)
    turns = itertools.count()
    rng = random.Random(3)

    async def op() -> None:
        # Each operation is one request: a task of its own, as a web server runs it
        # (read-your-writes holds per task).
        await asyncio.create_task(request(), context=contextvars.Context())

    async def request() -> None:
        if writes and rng.random() < writes:
            await repo.update(next(ad_ids), {"headline": f"h{next(turns)}"}, user_id=USER)
            return
        turn = next(turns) % 3
        if turn == 0:
            assert await repo.get_by_id(next(ad_ids), user_id=USER) is not None
        elif turn == 1:
            assert (await repo.list(user_id=USER, limit=20)).items
        else:
            assert await repo.count(user_id=USER) > 0

    return op


async def _replica_rows(quick: bool) -> list[Measurement]:
    primary = Cluster("bench-primary").init()
    replica = Cluster("bench-replica")
    try:
        primary.start()
        replica.init_replica_of(primary)
        replica.start()
        name = "ads_bench_topology"
        admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{primary.port}/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        alone = DatabaseManager(_config(primary.url(name)))
        routed = DatabaseManager(_config(primary.url(name), [replica.url(name)]))
        try:
            await migrate.upgrade(alone)
            ids = await _seed(RepositoryFactory(alone), 500)
            await routed.start()
            operations = 1_500 if quick else 6_000
            rows = []
            for label, writes in (("reads only", 0.0), ("95% reads, 5% writes", 0.05)):
                served = routed.replicas.replicas[0].reads
                best = await _best(
                    {
                        "replica": _read_mix(RepositoryFactory(routed), ids, writes),
                        "primary": _read_mix(RepositoryFactory(alone), ids, writes),
                    },
                    operations=operations,
                    rounds=2 if quick else 3,
                )
                share = (routed.replicas.replicas[0].reads - served) / (
                    operations * (2 if quick else 3) * (1 - writes)
                )
                rows.append(
                    Measurement(
                        AREA, f"read-heavy, one replica ({label})", best["replica"],
                        "the same on the primary alone", best["primary"],
                        note=f"get_by_id/list/count, concurrency {CONCURRENCY}; ~{share:.0%} of "
                        "reads served by the replica; both servers on this host",
                    )
                )  # fmt: skip
            return rows
        finally:
            await routed.close()
            await alone.close()
    finally:
        replica.destroy()
        primary.destroy()


async def _routing_rows(url: str, quick: bool) -> list[Measurement]:
    """Reads through the router with no replica configured, against the direct calls."""
    db = DatabaseManager(_config(url))
    try:
        factory = RepositoryFactory(db)
        count_stmt = select(func.count()).select_from(ads).where(ads.c.user_id == USER)
        ids = await _seed(factory, 200)
        ad_ids = itertools.cycle(ids)
        sql = str(
            select(ads).where(ads.c.id == 0, ads.c.user_id == 0).compile(dialect=db.engine.dialect)
        )

        async def count(session: AsyncSession) -> int:
            return int((await session.execute(count_stmt)).scalar_one())

        async def routed_count() -> None:
            assert await db.run_read(count) > 0

        async def direct_count() -> None:
            assert await db.run(count) > 0

        async def fetch(driver: Any) -> Any:
            return await driver.fetchrow(sql, next(ad_ids), USER)

        async def routed_get() -> None:
            # get_by_id's driver path, as the repository takes it
            assert await db.run_read_driver(fetch) is not None

        async def direct_get() -> None:
            # the same statement on the engine's pool, without the router
            assert await on_driver(db.engine, fetch) is not None

        pairs = 8 if quick else 16
        count_rates = await _paired(
            routed_count, direct_count, operations=400 if quick else 800, pairs=pairs
        )
        get_rates = await _paired(
            routed_get, direct_get, operations=1_000 if quick else 2_500, pairs=pairs
        )
        await db.run(lambda s: s.execute(text("SELECT 1")))
    finally:
        await db.close()
    note = (
        f"{pairs} pairs of rounds at concurrency {CONCURRENCY}, alternating which side goes "
        "first; ratio = median of the per-pair ratios"
    )
    return [
        Measurement(
            AREA, "read routing, no replica: count via run_read", count_rates[0],
            "the same via run (no routing)", count_rates[1], target=0.95, rounds=pairs,
            note=note,
        ),
        Measurement(
            AREA, "read routing, no replica: get_by_id's fetchrow via run_read_driver",
            get_rates[0], "the same via on_driver (no routing)", get_rates[1], target=0.95,
            rounds=pairs, note=note,
        ),
    ]  # fmt: skip


async def run(url: str, *, quick: bool) -> list[Measurement]:
    """The rows: routing overhead on ``url``'s server; replicas when initdb is installed."""
    rows = await _routing_rows(url, quick)
    missing = missing_programs("initdb", "pg_ctl", "pg_basebackup")
    if missing:
        print(f"bench db: skipping the replica rows ({', '.join(missing)} not installed)")
        return rows
    return rows + await _replica_rows(quick)
