"""Connection budgets (an exhausted pool fails at once, health shows the server's limit) and
the CLI's one line per database error."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager, PoolExhaustedError
from ads_infra.entrypoints.cli import cli
from ads_infra.repositories import RepositoryFactory

REPO = Path(__file__).resolve().parents[3]


async def test_an_exhausted_pool_fails_once_saying_how_many_waited(
    migrated_postgres_url: str,
) -> None:
    db = DatabaseManager(
        DatabaseConfig(url=migrated_postgres_url, pool_size=1, max_overflow=0, pool_timeout=1,
                       max_retries=5, retry_delay=0.01)
    )  # fmt: skip
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with db.get_session() as session:
            await session.execute(text("SELECT 1"))
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    try:
        await held.wait()
        results = await asyncio.gather(
            *(db.run(lambda s: s.execute(text("SELECT 1"))) for _ in range(3)),
            RepositoryFactory(db).create_ads_repository().get_by_id(1, user_id=1),
            return_exceptions=True,
        )
        assert all(isinstance(r, PoolExhaustedError) for r in results), results
        assert db.retries == 0  # a busy pool is not retried
        messages = [str(r) for r in results]
        assert any("4 callers were waiting" in m for m in messages), messages
        assert all("pool_size 1 + max_overflow 0" in m and "1 s" in m for m in messages)
    finally:
        release.set()
        await holder
        await db.close()


async def test_health_shows_the_connection_budget(postgres_url: str) -> None:
    small = DatabaseManager(DatabaseConfig(url=postgres_url))
    large = DatabaseManager(DatabaseConfig(url=postgres_url, pool_size=40, max_overflow=10))
    try:
        status = await small.health_check()
        max_connections = int(
            (await small.run(lambda s: s.execute(text("SHOW max_connections")))).scalar_one()
        )
        reserved = int(
            (
                await small.run(lambda s: s.execute(text("SHOW superuser_reserved_connections")))
            ).scalar_one()
        )
        fit = (max_connections - reserved) // 10
        assert f"pool max 10 of max_connections {max_connections}" in status.detail
        assert f"{fit} processes like this one fit" in status.detail
        assert ("warning" in status.detail) == (fit < 4)
        big = await large.health_check()
        assert big.healthy and "pool max 50" in big.detail
        assert ("warning" in big.detail) == ((max_connections - reserved) // 50 < 4)
    finally:
        await small.close()
        await large.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(REPO / "config.yml", tmp_path / "config.yml")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ADS_") and name != "ADS_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["db", "current"],
        ["db", "downgrade"],
        ["stats"],
        ["demo", "--users", "1", "--days", "2"],
        ["health"],
    ],
)
def test_every_command_prints_one_line_for_a_refused_login(
    project: Path, postgres_server_url: str, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    url = make_url(postgres_server_url).set(username="no_such_role", password="hunter2")
    monkeypatch.setenv("ADS_DATABASE_URL", url.render_as_string(hide_password=False))
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("ads-infra: ")
    if command != ["health"]:  # health prints its table, then the line
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "refused the login" in last and 'role "no_such_role"' in last
    assert "hunter2" not in result.output

    verbose = CliRunner().invoke(cli, ["-v", *command])
    assert verbose.exit_code == 1
    if command != ["health"]:  # health reports, it does not raise
        assert "Traceback" in verbose.output


def test_db_upgrade_sql_prints_the_migrations_without_connecting(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADS_DATABASE_URL", "postgresql+asyncpg://ads:pw@127.0.0.1:1/nowhere")
    result = CliRunner().invoke(cli, ["db", "upgrade", "--sql"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE campaigns" in result.output and "BIGSERIAL" in result.output
    assert "INSERT INTO ads_infra_alembic_version" in result.output  # not the host's table
    to_first = CliRunner().invoke(cli, ["db", "upgrade", "--sql", "0001"])
    assert to_first.exit_code == 0 and "CREATE TABLE ads" in to_first.output
    unknown = CliRunner().invoke(cli, ["db", "upgrade", "--sql", "nosuch"])
    assert unknown.exit_code == 1
    assert len(unknown.output.strip().splitlines()) == 1 and "nosuch" in unknown.output
