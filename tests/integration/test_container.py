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


def test_config_overridden_before_first_use_selects_what_it_names(tmp_path: Path) -> None:
    # The dependency-injector way: an option of ``config`` overridden before anything
    # was built is what the container builds from, validated as the file is.
    path = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/c.db")
    container = create_container(path, database={"url": "postgresql://ads:hunter2@db.internal/ads"})
    container.config.database.pool_size.override(3)
    container.config.cache.max_size.override(10)
    assert container.database.manager().config.pool_size == 3
    assert container.cache.manager().config.max_size == 10
    # A credential the config holds as a Secret reaches the settings whole.
    assert container.settings().database.url == "postgresql+asyncpg://ads:hunter2@db.internal/ads"
    bad = create_container(path)
    bad.config.cache.cache_type.override("redis_clustr")
    with pytest.raises(
        ConfigurationError, match=r"cache\.cache_type.*did you mean 'redis_cluster'"
    ):
        bad.cache.strategy()


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


async def test_every_manager_has_one_lifecycle_vocabulary(tmp_path: Path) -> None:
    """start(), close() and ``async with`` (which starts and closes) on every manager."""
    container = create_container(
        database={"url": f"sqlite+aiosqlite:///{tmp_path}/ads.db"},
        storage={"base_path": str(tmp_path / "files")},
    )
    managers = [
        container.database.manager(),
        container.cache.manager(),
        container.storage.manager(),
        container.services.manager(),
        container.services.ai(),
        container.services.analytics(),
        container.services.notifications(),
    ]
    for manager in managers:
        assert not hasattr(manager, "dispose"), f"{type(manager).__name__}: close() is the verb"
        async with manager as entered:
            assert entered is manager
    assert (tmp_path / "files").is_dir()  # the storage manager was started by `async with`
    assert (await container.database.manager().get_pool_stats())["pool_class"] == "none"


def test_the_config_provider_holds_no_credential_in_the_clear(tmp_path: Path) -> None:
    container = create_container(
        write_config(tmp_path, "sqlite+aiosqlite:///x.db"),
        database={"url": "postgresql://ads:hunter2@db.internal/ads"},
        cache={"cache_type": "redis", "redis_url": "redis://:redispw@cache:6379/1"},
        services={"ai": {"api_key": "sk-live-123"}},
    )
    shown = repr(container.config())
    for secret in ("hunter2", "redispw", "sk-live-123"):
        assert secret not in shown
    url = container.config.database.url()
    assert url.get_secret_value() == "postgresql+asyncpg://ads:hunter2@db.internal/ads"
