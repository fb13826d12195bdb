"""The container tree: built from config, resources started and stopped, providers overridable."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from dependency_injector import providers
from sqlalchemy import text

from ads_infra.config import DatabaseConfig
from ads_infra.containers import Container, create_container
from ads_infra.database import DatabaseManager
from ads_infra.errors import ConfigurationError, TransientDatabaseError


def write_config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(f"database:\n  url: '{database_url}'\n  pool_size: 2\n")
    return path


async def test_providers_return_instances_and_resources_start_and_stop(tmp_path: Path) -> None:
    container = create_container(write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/c.db"))
    manager = container.database.manager()
    assert isinstance(manager, DatabaseManager)
    assert not inspect.isawaitable(manager)
    assert manager is container.database.manager()  # one per container
    assert manager.config.pool_size == 2

    await container.init_resources()
    stats = await manager.get_pool_stats()
    assert stats["checked_in"] == 1  # start() opened and returned one connection
    await container.shutdown_resources()
    assert (await manager.get_pool_stats())["pool_class"] == "none"  # disposed


async def test_init_resources_fails_fast_when_the_selected_database_is_down(
    tmp_path: Path,
) -> None:
    container = create_container(
        write_config(tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:1/none")
    )
    with pytest.raises(TransientDatabaseError, match="unavailable"):
        await container.init_resources()
    await container.database.manager().close()


def test_keyword_overrides_are_merged_and_validated(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/c.db")
    container = create_container(path, database={"pool_size": 9})
    assert container.database.manager().config.pool_size == 9
    with pytest.raises(ConfigurationError, match=r"database\.pool_size"):
        create_container(path, database={"pool_size": "many"})


async def test_a_provider_can_be_overridden_for_tests(tmp_path: Path) -> None:
    container = create_container(write_config(tmp_path, "sqlite+aiosqlite:///:memory:"))
    replacement = DatabaseManager(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path}/o.db"))
    with container.database.manager.override(providers.Object(replacement)):
        assert container.database.manager() is replacement
        async with container.database.manager().get_session() as session:
            await session.execute(text("SELECT 1"))
    assert container.database.manager() is not replacement
    await replacement.close()


def test_the_container_class_is_declarative() -> None:
    assert {"config", "database", "cache", "storage", "services", "repositories"} <= set(
        Container.providers
    )
