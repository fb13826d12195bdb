"""The seed's snippet runs as written; migrations go up and down without drift.

A database never migrated gives a clear error naming the fix.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ads_infra.database import DatabaseConfig, DatabaseManager, migrate
from ads_infra.database.migrations.version_table import VERSION_TABLE
from ads_infra.database.tables import metadata
from ads_infra.errors import PermanentDatabaseError, SchemaNotMigratedError
from ads_infra.repositories import RepositoryFactory
from tests.integration.repositories.conftest import make_db

TABLES = {"ads", "ad_groups", "campaigns", "optimization_suggestions", "performance_daily"}


async def test_seed_snippet_runs_as_written(db: DatabaseManager) -> None:
    db_manager = db  # the seed's DatabaseManager(), on this test's backend; then verbatim:
    repo_factory = RepositoryFactory(db_manager)
    ads_repo = repo_factory.create_ads_repository()
    analytics_repo = repo_factory.create_analytics_repository()
    ads_data = await ads_repo.get_by_id(123, user_id=456)
    user_stats = await ads_repo.get_user_stats(user_id=456)

    assert ads_data is None  # a missing ad is None, not an exception
    assert user_stats.user_id == 456 and user_stats.total_ads == 0
    assert user_stats.spend_micros == 0 and user_stats.totals.metrics.ctr is None
    assert analytics_repo is not None


async def test_seed_snippet_on_the_default_database_with_the_default_constructor(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(str(tmp_path))  # DatabaseManager() uses ./var/ads.db, not there yet
    # Verbatim: the embedded SQLite database gets its schema on first use.
    db_manager = DatabaseManager()
    repo_factory = RepositoryFactory(db_manager)
    ads_repo = repo_factory.create_ads_repository()
    analytics_repo = repo_factory.create_analytics_repository()
    ads_data = await ads_repo.get_by_id(123, user_id=456)
    user_stats = await ads_repo.get_user_stats(user_id=456)

    assert ads_data is None and user_stats.total_ads == 0 and analytics_repo is not None
    assert await migrate.current(db_manager) == migrate.head()
    await db_manager.close()
    # A later process finds the schema there (and at the head: nothing to do).
    again = DatabaseManager()
    assert await RepositoryFactory(again).create_campaign_repository().count(user_id=1) == 0
    assert not again.migrate_pending
    await again.close()


async def test_first_calls_at_once_migrate_once(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_db(f"sqlite+aiosqlite:///{tmp_path}/first.db", auto_migrate="sqlite")
    factory = RepositoryFactory(db)
    upgrades: list[str] = []
    real = migrate.upgrade

    async def counted(manager: DatabaseManager, revision: str = "head") -> None:
        upgrades.append(revision)
        await real(manager, revision)

    monkeypatch.setattr(migrate, "upgrade", counted)
    found = await asyncio.gather(
        factory.create_ads_repository().get_by_id(1, user_id=1),
        factory.create_campaign_repository().count(user_id=1),
        factory.run(lambda uow: uow.groups.count(user_id=1)),
    )
    async with factory.unit_of_work() as uow:
        assert await uow.ads.count(user_id=1) == 0
    assert found == [None, 0, 0] and upgrades == ["head"]
    await db.close()


async def test_auto_migrate_always_on_postgresql_from_processes_at_once(postgres_url: str) -> None:
    # Two managers stand for two processes starting together on an empty database:
    # the advisory lock makes them take turns, the later one finds the schema there.
    first = make_db(postgres_url, auto_migrate="always")
    second = make_db(postgres_url, auto_migrate="always")
    counts = await asyncio.gather(
        RepositoryFactory(first).create_ads_repository().count(user_id=1),
        RepositoryFactory(second).create_campaign_repository().count(user_id=1),
    )
    assert counts == [0, 0] and await migrate.current(first) == migrate.head()
    assert not first.migrate_pending and not second.migrate_pending
    await first.close()
    await second.close()
    # The default leaves a server database to the deploy step.
    default = make_db(postgres_url, auto_migrate="sqlite")
    assert not default.migrate_pending
    await default.close()


async def test_unmigrated_database_gives_a_clear_error_for_every_repository(db_url: str) -> None:
    db = make_db(db_url)
    factory = RepositoryFactory(db)
    calls = [
        factory.create_ads_repository().get_by_id(1, user_id=1),
        factory.create_ads_repository().get_user_stats(user_id=1),
        factory.create_campaign_repository().list(user_id=1),
        factory.create_performance_repository().count(user_id=1),
    ]
    for call in calls:
        with pytest.raises(SchemaNotMigratedError) as exc:
            await call
        assert "ads-infra db upgrade" in str(exc.value)
        assert isinstance(exc.value, PermanentDatabaseError)
    with pytest.raises(SchemaNotMigratedError):
        async with factory.unit_of_work() as uow:
            await uow.campaigns.count(user_id=1)
    await db.close()


def _drift(connection: Connection) -> list[object]:
    opts = {"compare_type": True, "version_table": VERSION_TABLE}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_has_no_drift_and_downgrade_removes_everything(db_url: str) -> None:
    db = make_db(db_url)
    assert await migrate.current(db) is None
    await migrate.upgrade(db)
    assert await migrate.current(db) == "0001"
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_drift) == []  # autogenerate would find nothing to do
        assert await conn.run_sync(_tables) >= TABLES
    await migrate.downgrade(db)
    assert await migrate.current(db) is None
    async with db.engine.connect() as conn:
        assert not (TABLES & await conn.run_sync(_tables))
    await migrate.upgrade(db)  # and up again
    assert await migrate.current(db) == "0001"
    await db.close()


# Alembic's own version table, as Alembic creates it.
LEGACY_VERSION_TABLE = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


async def _host_revision(db: DatabaseManager, revision: str | None = None) -> list[str]:
    """The host application's own Alembic table: ``revision`` put in, what it holds out."""
    async with db.engine.begin() as conn:
        if revision is not None:
            await conn.execute(text(LEGACY_VERSION_TABLE))
            await conn.execute(text(f"INSERT INTO alembic_version VALUES ('{revision}')"))
        found = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return [row[0] for row in found]


async def test_a_host_apps_own_alembic_on_the_same_database_is_left_alone(db_url: str) -> None:
    db = make_db(db_url)
    assert await _host_revision(db, "a1b2c3d4e5f6") == ["a1b2c3d4e5f6"]
    await migrate.upgrade(db)
    assert await migrate.current(db) == "0001"
    assert await _host_revision(db) == ["a1b2c3d4e5f6"]  # its revision, in its table
    await migrate.downgrade(db)
    assert await _host_revision(db) == ["a1b2c3d4e5f6"]
    await db.close()


async def test_a_database_migrated_by_an_earlier_release_keeps_its_revision(db_url: str) -> None:
    db = make_db(db_url)
    await migrate.upgrade(db)
    async with db.engine.begin() as conn:  # as releases before the version table left it
        await conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
        await conn.execute(text(LEGACY_VERSION_TABLE))
        await conn.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
    assert await migrate.current(db) == "0001"  # read there, not taken for a new database
    await migrate.upgrade(db)  # adopted: nothing created twice
    assert await _host_revision(db) == ["0001"]  # copied, not removed: whose it is, is unknown
    async with db.engine.connect() as conn:
        assert VERSION_TABLE in await conn.run_sync(_tables)
    assert await migrate.current(db) == "0001"
    await migrate.downgrade(db)  # from the adopted revision
    assert await migrate.current(db) is None
    await db.close()


async def test_a_host_revision_beside_an_earlier_releases_is_left_alone(db_url: str) -> None:
    db = make_db(db_url)
    await migrate.upgrade(db)
    async with db.engine.begin() as conn:  # an earlier release's row after a host's
        await conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
        await conn.execute(text(LEGACY_VERSION_TABLE))
        await conn.execute(text("INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6'), ('0001')"))
    await migrate.upgrade(db)
    assert await migrate.current(db) == "0001"
    assert sorted(await _host_revision(db)) == ["0001", "a1b2c3d4e5f6"]
    await db.close()


async def test_processes_migrating_one_sqlite_file_at_once_take_turns(tmp_path: object) -> None:
    # Two managers stand for two processes: each its own engine and connections.
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    first, second = make_db(url, auto_migrate="sqlite"), make_db(url, auto_migrate="sqlite")
    await asyncio.gather(migrate.upgrade(first), migrate.upgrade(second))
    assert await migrate.current(first) == "0001"
    async with first.engine.connect() as conn:
        assert await conn.run_sync(_drift) == []
    await first.close()
    await second.close()


async def _waiting_for_an_advisory_lock(conn: AsyncConnection, task: asyncio.Task[None]) -> bool:
    """Whether another backend of this database comes to wait on an advisory lock
    while ``task`` runs (False: the task ended first)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
    )
    for _ in range(400):
        if task.done():
            return False
        if (await conn.execute(query)).scalar_one():
            return True
        await asyncio.sleep(0.025)
    return False


async def test_a_postgresql_migration_waits_for_the_lock_past_the_statement_timeout(
    postgres_url: str,
) -> None:
    # Another process's migration holds the lock: this one waits for it, longer
    # than the statement timeout the manager applies to everything else, and then
    # finds the schema to build.
    db = DatabaseManager(
        DatabaseConfig(url=postgres_url, pool_size=1, max_overflow=0, statement_timeout=0.5)
    )
    # Connected first, so that the driver's own first queries (type introspection,
    # slow on a loaded machine) are not what the timeout stops.
    assert await migrate.current(db) is None
    holder = make_db(postgres_url)
    async with holder.engine.connect() as conn:
        await conn.execute(text(f"SELECT pg_advisory_lock({migrate.LOCK_KEY})"))
        await conn.commit()
        task = asyncio.create_task(migrate.upgrade(db))
        try:
            waited = await _waiting_for_an_advisory_lock(conn, task)
            assert waited, f"did not wait for the lock: {_outcome(task)}"
            await asyncio.sleep(1.5)  # three statement timeouts
            assert not task.done(), f"gave up waiting: {_outcome(task)}"
        finally:
            await conn.execute(text(f"SELECT pg_advisory_unlock({migrate.LOCK_KEY})"))
            await conn.commit()
        await task
    assert await migrate.current(db) == migrate.head()
    await holder.close()
    await db.close()


def _outcome(task: asyncio.Task[None]) -> str:
    if not task.done():
        return "still running"
    return "cancelled" if task.cancelled() else f"ended with {task.exception()!r}"


async def test_a_revision_newer_than_this_release_is_left_as_it_is(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    # A newer release migrated this file (then was rolled back): repositories use
    # the schema as it is, with a warning, rather than failing every call.
    url = f"sqlite+aiosqlite:///{tmp_path}/newer.db"
    newer = make_db(url)
    await migrate.upgrade(newer)
    async with newer.engine.begin() as conn:
        await conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dfeedbeef'"))
    await newer.close()

    db = make_db(url, auto_migrate="sqlite")
    assert db.migrate_pending
    with caplog.at_level(logging.WARNING, logger="ads_infra"):
        assert await RepositoryFactory(db).create_campaign_repository().count(user_id=1) == 0
    assert not db.migrate_pending
    assert any("left as it is" in r.getMessage() for r in caplog.records), caplog.text
    assert await migrate.current(db) == "f00dfeedbeef"
    await db.close()
