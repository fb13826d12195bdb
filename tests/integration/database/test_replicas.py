"""Read replicas against a private primary and its streaming replica (pg_basebackup -R).

Where a statement ran is asked of the server (``inet_server_port()``) and
counted by the manager (``Replica.reads``). Replay is paused and resumed on
the replica (``pg_wal_replay_pause()``) to make it lag on purpose.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from ads_infra.cache import CacheConfig, CacheManager
from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager
from ads_infra.domain.entities import Ad, AdGroup, Campaign
from ads_infra.entrypoints.cli import cli
from ads_infra.repositories import RepositoryFactory
from tests.conftest import _migrate, _run_in_thread
from tests.pg_servers import Cluster

REPO = Path(__file__).resolve().parents[3]
DATABASE = "ads_replicated"
PORT = text("SELECT inet_server_port()")
USER = 31


def _dsn(cluster: Cluster, database: str = "postgres") -> str:
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{database}"


async def _admin(cluster: Cluster, sql: str, database: str = "postgres") -> Any:
    conn = await asyncpg.connect(_dsn(cluster, database))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _until(check: Any, what: str, patience: float = 15.0) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture(scope="module")
def servers(replicated: tuple[Cluster, Cluster]) -> Iterator[tuple[Cluster, Cluster]]:
    """The pair, with a migrated database the replica has received."""
    primary, replica = replicated

    async def prepare() -> None:
        await _admin(primary, f'CREATE DATABASE "{DATABASE}"')
        await _migrate(primary.url(DATABASE))

        async def replicated_schema() -> bool:
            try:
                found = await _admin(replica, "SELECT to_regclass('ads') IS NOT NULL", DATABASE)
                return bool(found)
            except Exception:
                return False

        await _until(replicated_schema, "the schema on the replica")

    _run_in_thread(prepare())
    yield primary, replica


def make_db(primary: Cluster, replica: Cluster, **settings: Any) -> DatabaseManager:
    values: dict[str, Any] = {
        "url": primary.url(DATABASE),
        "replica_urls": [replica.url(DATABASE)],
        "replica_check_interval": 0.1,
        "max_replica_lag": 2.0,
        "pool_size": 3,
        "max_overflow": 2,
        "retry_delay": 0.01,
        "retry_max_delay": 0.05,
        **settings,
    }
    return DatabaseManager(DatabaseConfig(**values))


@pytest.fixture
async def db(servers: tuple[Cluster, Cluster]) -> AsyncIterator[DatabaseManager]:
    manager = make_db(*servers)
    await manager.start()
    yield manager
    await manager.close()


async def port_of_read(db: DatabaseManager) -> int:
    return int((await db.run_read(lambda s: s.execute(PORT))).scalar_one())


async def back_on_replica(db: DatabaseManager, replica: Cluster) -> None:
    async def on_replica() -> bool:
        return await port_of_read(db) == replica.port

    await _until(on_replica, "reads to return to the replica")


async def seed(factory: RepositoryFactory, name: str) -> Ad:
    campaign = await factory.create_campaign_repository().create(
        Campaign(user_id=USER, name=f"{name}-c", daily_budget_micros=5_000_000)
    )
    group = await factory.create_group_repository().create(
        AdGroup(user_id=USER, campaign_id=campaign.id, name=f"{name}-g")
    )
    return await factory.create_ads_repository().create(
        Ad(user_id=USER, campaign_id=campaign.id, group_id=group.id, name=f"{name}-a",
           final_url="https://example.com/")
    )  # fmt: skip


async def test_reads_land_on_the_replica_and_writes_on_the_primary(
    db: DatabaseManager, servers: tuple[Cluster, Cluster]
) -> None:
    primary, replica = servers
    assert await port_of_read(db) == replica.port
    assert int((await db.run(lambda s: s.execute(PORT))).scalar_one()) == primary.port

    factory = RepositoryFactory(db)
    ad = await seed(factory, "routing")
    assert ad.id is not None
    await back_on_replica(db, replica)  # once a probe has seen the replica replay the writes
    counter = db.replicas.replicas[0]
    before, commits = counter.reads, db.transactions
    ads = factory.create_ads_repository()
    assert (await ads.get_by_id(ad.id, user_id=USER)) == ad
    assert [a.id for a in (await ads.list(user_id=USER)).items] == [ad.id]
    assert await ads.count(user_id=USER) == 1
    analytics = factory.create_analytics_repository()
    day = dt.date(2024, 1, 1)
    summaries = await analytics.summaries("campaign", user_id=USER, start_date=day, end_date=day)
    assert summaries == []
    assert counter.reads - before == 4
    assert db.transactions == commits  # no read went through a primary transaction
    async with factory.unit_of_work() as uow:  # inside a unit: the primary, its transaction
        assert await uow.ads.count(user_id=USER) == 1
    assert counter.reads - before == 4


async def test_a_writer_reads_its_own_writes_while_the_replica_is_paused(
    db: DatabaseManager, servers: tuple[Cluster, Cluster]
) -> None:
    _, replica = servers
    factory = RepositoryFactory(db)
    cached = RepositoryFactory(db, CacheManager(CacheConfig())).create_ads_repository()
    ad = await seed(factory, "ryw")
    assert ad.id is not None
    await back_on_replica(db, replica)
    assert (await cached.get_by_id(ad.id, user_id=USER)) == ad  # cached now
    await _admin(replica, "SELECT pg_wal_replay_pause()")
    try:
        ads = factory.create_ads_repository()
        await ads.update(ad.id, {"name": "renamed"}, user_id=USER)
        await cached.update(ad.id, {"headline": "new headline"}, user_id=USER)
        fresh = await ads.get_by_id(ad.id, user_id=USER)
        assert fresh is not None and (fresh.name, fresh.headline) == ("renamed", "new headline")
        # The cache was refilled from the primary, never from the replica that missed both.
        for _ in range(2):
            hit = await cached.get_by_id(ad.id, user_id=USER)
            assert hit is not None and (hit.name, hit.headline) == ("renamed", "new headline")
        # The replica really is behind: asked directly, it still has the old row.
        old_name = await _admin(replica, f"SELECT name FROM ads WHERE id = {ad.id}", DATABASE)
        assert old_name == "ryw-a"
        # A task this one starts now shares its writes' mark: it reads the primary too.
        child = await asyncio.create_task(ads.get_by_id(ad.id, user_id=USER))
        assert child is not None and child.name == "renamed"
        # Read-your-writes is per task: a task that wrote nothing (another request)
        # reads the replica, which is within max_replica_lag.
        other = await asyncio.create_task(
            ads.get_by_id(ad.id, user_id=USER), context=contextvars.Context()
        )
        assert other is not None and other.name == "ryw-a"
    finally:
        await _admin(replica, "SELECT pg_wal_replay_resume()")
    await back_on_replica(db, replica)


async def test_a_lagging_replica_is_skipped_and_comes_back(
    servers: tuple[Cluster, Cluster],
) -> None:
    primary, replica = servers
    writer = make_db(primary, replica)
    reader = make_db(primary, replica, max_replica_lag=0.5)  # never writes
    await reader.start()
    try:
        assert await port_of_read(reader) == replica.port
        await _admin(replica, "SELECT pg_wal_replay_pause()")
        try:
            await seed(RepositoryFactory(writer), "lag")

            async def skipped() -> bool:
                return await port_of_read(reader) == primary.port

            await _until(skipped, "the lagging replica to be skipped")
            (_, status) = await reader.health_checks()
            assert not status.healthy and "max_replica_lag" in status.detail
        finally:
            await _admin(replica, "SELECT pg_wal_replay_resume()")
        await back_on_replica(reader, replica)
        (_, status) = await reader.health_checks()
        assert status.healthy, status.detail
    finally:
        await writer.close()
        await reader.close()


async def test_reads_go_on_while_the_replica_stops_and_return_when_it_restarts(
    db: DatabaseManager, servers: tuple[Cluster, Cluster]
) -> None:
    _, replica = servers
    factory = RepositoryFactory(db)
    ad = await seed(factory, "outage")
    assert ad.id is not None
    await back_on_replica(db, replica)
    ads, counter = factory.create_ads_repository(), db.replicas.replicas[0]
    errors: list[BaseException] = []
    reads = 0
    stop = asyncio.Event()

    async def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                assert await ads.get_by_id(ad.id, user_id=USER) == ad  # type: ignore[arg-type]
                assert await ads.count(user_id=USER) >= 1
                reads += 2
            except BaseException as exc:
                errors.append(exc)
                return

    workers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        await asyncio.sleep(0.5)
        served_before = counter.reads
        assert served_before > 0, (errors, counter.stats())
        await asyncio.to_thread(replica.stop)
        reads_at_stop = reads
        await asyncio.sleep(1.0)
        assert reads > reads_at_stop  # the primary answered meanwhile
        (_, down) = await db.health_checks()
        assert not down.healthy and "unreachable" in down.detail
        stats = await db.get_pool_stats()
        assert stats["replicas"][0]["up"] is False
        await asyncio.to_thread(replica.start)
        after_restart = counter.reads

        async def served_again() -> bool:
            return counter.reads > after_restart + 10

        await _until(served_again, "the restarted replica to serve reads")
    finally:
        stop.set()
        await asyncio.gather(*workers)
        if not (replica.data / "postmaster.pid").exists():
            replica.start()
    assert errors == []
    assert db.replicas.fallbacks >= 1 or counter.failures >= 1
    (_, up) = await db.health_checks()
    assert up.healthy, up.detail


def test_health_prints_each_replica(
    servers: tuple[Cluster, Cluster], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = servers
    shutil.copy(REPO / "config.yml", tmp_path / "config.yml")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ADS_") and name != "ADS_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("ADS_DATABASE_URL", primary.url(DATABASE))
    monkeypatch.setenv("ADS_DATABASE_REPLICA_URLS", replica.url(DATABASE))
    result = CliRunner().invoke(cli, ["health"])
    assert result.exit_code == 0, result.output
    assert "database.replica[0]" in result.output and "behind" in result.output
    assert "max_connections 40" in result.output  # the private primary's setting
