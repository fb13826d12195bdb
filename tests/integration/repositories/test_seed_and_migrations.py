"""The seed's snippet runs as written; migrations go up and down without drift.

A database never migrated gives a clear error naming the fix.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from ads_infra.database import DatabaseManager, migrate
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
    monkeypatch.chdir(str(tmp_path))  # DatabaseManager() uses ./var/ads.db
    db_manager = DatabaseManager()
    repo_factory = RepositoryFactory(db_manager)
    ads_repo = repo_factory.create_ads_repository()
    with pytest.raises(SchemaNotMigratedError, match="ads-infra db upgrade"):
        await ads_repo.get_by_id(123, user_id=456)
    await repo_factory.migrate()
    ads_data = await ads_repo.get_by_id(123, user_id=456)
    user_stats = await ads_repo.get_user_stats(user_id=456)
    assert ads_data is None and user_stats.total_ads == 0
    await db_manager.close()


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
    context = MigrationContext.configure(connection, opts={"compare_type": True})
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
