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
