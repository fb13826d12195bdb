"""The pytest plugin host apps get: ads_container on embedded backends, provider overrides."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager, migrate
from ads_infra.testing import override_providers


@pytest.fixture
def ads_container_overrides() -> dict[str, Any]:
    return {"database": {"pool_size": 4}}


async def test_ads_container_is_embedded_migrated_and_started(ads_container: Any, tmp_path) -> None:
    db = ads_container.database.manager()
    assert db.config.url.startswith("sqlite+aiosqlite:///" + str(tmp_path))
    assert db.config.pool_size == 4  # the overrides fixture was applied
    assert await migrate.current(db) is not None
    assert (await db.get_pool_stats())["checked_in"] >= 1


async def test_override_providers_swaps_and_restores(ads_container: Any, tmp_path) -> None:
    other = DatabaseManager(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path}/other.db"))
    original = ads_container.database.manager()
    with override_providers(ads_container, {"database.manager": other}):
        assert ads_container.database.manager() is other
        async with ads_container.database.manager().get_session() as session:
            await session.execute(text("SELECT 1"))
    assert ads_container.database.manager() is original
    await other.close()


async def test_an_override_after_first_use_reaches_what_was_built_from_it(
    ads_container: Any,
) -> None:
    """The repository factory built with the real cache is rebuilt with the stand-in."""
    from ads_infra.cache import CacheManager

    real = ads_container.repositories.factory()
    assert real.cache is ads_container.cache.manager()
    stand_in = CacheManager()
    with override_providers(ads_container, {"cache.manager": stand_in}):
        assert ads_container.repositories.factory().cache is stand_in
        assert ads_container.repositories.ads()._cache is stand_in
    assert ads_container.repositories.factory().cache is ads_container.cache.manager()
    assert ads_container.database.manager() is real.db_manager  # untouched: not built from it


def test_the_ini_option_names_the_hosts_container_class(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        host_containers="""
        from dependency_injector import containers
        from ads_infra.containers import Container

        class HostContainer(Container):
            wiring_config = containers.WiringConfiguration(modules=["host_views"])
        """,
        host_views="""
        from dependency_injector.wiring import Provide, inject

        @inject
        def backend(cache=Provide["cache.manager"]):
            return cache.active_backend
        """,
        test_host="""
        import host_containers, host_views

        async def test_class_and_wiring(ads_container):
            assert ads_container.declarative_parent is host_containers.HostContainer
            assert host_views.backend() == "memory"
        """,
    )
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "ads_container_class = host_containers:HostContainer\n"
    )
    pytester.syspathinsert()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
