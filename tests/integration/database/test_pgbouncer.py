"""Through PgBouncer in transaction pooling mode: what fails without ``pgbouncer: true``, and
what works with it (migrations, statement timeouts, concurrent units of work, the demo).

The repository suite itself also runs through PgBouncer (the ``pgbouncer``
backend of tests/integration/repositories/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager, migrate
from ads_infra.domain.entities import Ad, AdGroup, Campaign
from ads_infra.entrypoints.cli import cli
from ads_infra.errors import PermanentDatabaseError
from ads_infra.repositories import RepositoryFactory
from tests.pg_fixtures import _require
from tests.pg_servers import PgBouncer

REPO = Path(__file__).resolve().parents[3]


def via(bouncer: PgBouncer, url: str) -> str:
    return make_url(url).set(port=bouncer.port).render_as_string(hide_password=False)


def manager(url: str, **settings: object) -> DatabaseManager:
    defaults: dict[str, object] = {"pool_size": 3, "max_overflow": 2, "retry_delay": 0.01}
    return DatabaseManager(DatabaseConfig(url=url, **{**defaults, **settings}))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lenient_bouncer(postgres_server_url: str) -> Iterator[PgBouncer]:
    """A PgBouncer that lets statement_timeout through, with one server connection per database:
    two clients' prepared statements then meet on the same server connection."""
    _require("pgbouncer")
    bouncer = PgBouncer(5432, pool_size=1, ignore="statement_timeout")
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


async def test_without_the_setting_the_refused_startup_parameter_names_it(
    pgbouncer: PgBouncer, postgres_url: str
) -> None:
    db = manager(via(pgbouncer, postgres_url))
    try:
        health = await db.health_check()
        assert not health.healthy
        assert "unsupported startup parameter" in health.detail
        assert "database.pgbouncer: true" in health.detail
        with pytest.raises(PermanentDatabaseError, match="ADS_DATABASE_PGBOUNCER=1"):
            await db.run(lambda s: s.execute(text("SELECT 1")))
        assert db.retries == 0  # not an outage: no retry
    finally:
        await db.close()


def _db_current(url: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """``ads-infra db current`` in a process of its own (asyncpg numbers its prepared
    statements per process: two processes both use ``__asyncpg_stmt_1__``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADS_DATABASE")}
    return subprocess.run(
        [sys.executable, "-m", "ads_infra.entrypoints.cli", "--config", str(REPO / "config.yml"),
         "db", "current"],
        env={**env, "ADS_DATABASE_URL": url, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def test_without_the_setting_colliding_prepared_statements_name_it(
    lenient_bouncer: PgBouncer, postgres_url: str
) -> None:
    """PgBouncer keeps a process's prepared statements on the server connection it used;
    the next process to get that connection prepares the same name again."""
    url = via(lenient_bouncer, postgres_url)
    runs = [_db_current(url) for _ in range(3)]
    assert runs[0].returncode == 0, runs[0].stderr
    failed = [run for run in runs[1:] if run.returncode != 0]
    assert failed, [run.stdout for run in runs]
    for run in failed:
        assert run.returncode == 1
        assert 'prepared statement "__asyncpg_stmt_' in run.stderr
        assert "database.pgbouncer: true" in run.stderr
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_with_the_setting_processes_share_server_connections(
    lenient_bouncer: PgBouncer, postgres_url: str
) -> None:
    url = via(lenient_bouncer, postgres_url)
    runs = [_db_current(url, ADS_DATABASE_PGBOUNCER="1") for _ in range(3)]
    assert [run.returncode for run in runs] == [0, 0, 0], [run.stderr for run in runs]


async def test_statement_timeout_is_set_per_transaction(
    pgbouncer: PgBouncer, postgres_url: str
) -> None:
    db = manager(via(pgbouncer, postgres_url), pgbouncer=True, statement_timeout=0.5)
    try:
        shown = await db.run(lambda s: s.execute(text("SHOW statement_timeout")))
        assert shown.scalar_one() == "500ms"
        with pytest.raises(PermanentDatabaseError, match="statement timeout"):
            await db.run(lambda s: s.execute(text("SELECT pg_sleep(3)")))
    finally:
        await db.close()


async def test_migrations_and_concurrent_units_of_work(
    pgbouncer: PgBouncer, postgres_url: str
) -> None:
    """40 concurrent units on 10 client connections sharing PgBouncer's 8 server connections."""
    db = manager(via(pgbouncer, postgres_url), pgbouncer=True, pool_size=5, max_overflow=5)
    factory = RepositoryFactory(db)
    try:
        await migrate.upgrade(db)
        assert await migrate.current(db) is not None

        async def unit(i: int) -> int:
            async def work(uow: object) -> int:
                campaign = await uow.campaigns.create(  # type: ignore[attr-defined]
                    Campaign(user_id=7, name=f"c{i}", daily_budget_micros=1_000_000)
                )
                group = await uow.groups.create(  # type: ignore[attr-defined]
                    AdGroup(user_id=7, campaign_id=campaign.id, name=f"g{i}")
                )
                ad = await uow.ads.create(  # type: ignore[attr-defined]
                    Ad(user_id=7, campaign_id=campaign.id, group_id=group.id, name=f"a{i}",
                       final_url="https://example.com/")
                )  # fmt: skip
                return int(ad.id)

            return await factory.run(work)

        ids = await asyncio.gather(*(unit(i) for i in range(40)))
        assert len(set(ids)) == 40
        ads = factory.create_ads_repository()
        assert await ads.count(user_id=7) == 40
        assert all([await ads.get_by_id(ad_id, user_id=7) for ad_id in ids])
        assert db.retries == 0
    finally:
        await db.close()


def test_the_demo_and_the_cli_through_pgbouncer(
    pgbouncer: PgBouncer, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(REPO / "config.yml", tmp_path / "config.yml")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ADS_") and name != "ADS_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("ADS_DATABASE_URL", via(pgbouncer, postgres_url))

    refused = CliRunner().invoke(cli, ["db", "upgrade"])
    assert refused.exit_code == 1
    assert "ADS_DATABASE_PGBOUNCER=1" in refused.output
    assert "Traceback" not in refused.output and len(refused.output.strip().splitlines()) == 1

    monkeypatch.setenv("ADS_DATABASE_PGBOUNCER", "1")
    upgraded = CliRunner().invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    demo = CliRunner().invoke(cli, ["demo", "--json", "--users", "1", "--days", "10"])
    assert demo.exit_code == 0, demo.output
    report = json.loads(demo.stdout)
    assert report["stats"]["pool"]["pgbouncer"] is True
    assert report["seed"]["performance_rows"] > 0
    health = CliRunner().invoke(cli, ["health"])
    assert health.exit_code == 0, health.output
    assert "behind PgBouncer" in health.output
