"""The example package's SQLite cache backend, chosen by configuration alone.

``cache.cache_type: sqlite`` with ``cache.options.path``: the manager, the
container, health, metrics and the demo run on the plugin's SQLite file.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ads_infra.cache import CacheConfig, CacheManager
from ads_infra.containers import create_container
from ads_infra.core.errors import CacheError
from ads_infra.core.lifecycle import running
from ads_infra.core.settings import Settings
from ads_infra.entrypoints.cli import collect_health

pytestmark = pytest.mark.usefixtures("example_installed")


def _rows(path: Path) -> list[tuple[str, Any]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT key, expires_at FROM cache_entries ORDER BY key"))


def _config(path: Path, **fields: Any) -> CacheConfig:
    return Settings.from_dict(
        {"cache": {"cache_type": "sqlite", "options": {"path": str(path)}, **fields}}
    ).cache


async def test_values_ttls_deletes_and_patterns_live_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "entries.sqlite3"
    async with CacheManager(_config(path, fallback_enabled=False)) as cache:
        assert cache.backend == "sqlite" and cache.strategy.target == str(path)
        await cache.set("ad:1", {"headline": "Hi"}, ttl=600)
        await cache.set("ad:2", [1, 2], ttl=0)  # no expiry
        await cache.set_many({"user:1:a": 1, "user:1:b": 2, "user:2:a": 3})
        assert await cache.get("ad:1") == {"headline": "Hi"}
        assert await cache.get_many(["ad:1", "ad:2", "nope"]) == {
            "ad:1": {"headline": "Hi"},
            "ad:2": [1, 2],
        }
        assert await cache.exists("ad:2") and not await cache.exists("nope")
        (_, left), (_, never) = await cache.strategy.get_many_with_ttl_raw(["ads:ad:1", "ads:ad:2"])
        assert 590 < left <= 600 and never == math.inf
        assert await cache.invalidate_pattern("user:1:*") == 2
        assert await cache.get("user:2:a") == 3 and await cache.get("user:1:a") is None
        assert await cache.delete("ad:2") and not await cache.delete("ad:2")
        stats = await cache.get_stats()
        assert stats["backend"] == "sqlite" and stats["sets"] == 5
    # The entries are in the file, namespaced, after the manager closed it.
    assert [key for key, _ in _rows(path)] == ["ads:ad:1", "ads:user:2:a"]


async def test_an_expired_entry_is_gone_and_a_second_process_file_user_sees_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.sqlite3"
    config = _config(path, fallback_enabled=False)
    async with CacheManager(config) as writer, CacheManager(config) as reader:
        await writer.set("short", "v", ttl=0.05)
        await writer.set("long", "w", ttl=60)
        assert await reader.get("long") == "w"  # another connection to the same file
        for _ in range(200):  # the short entry's 50 ms run out
            if await reader.get("short") is None:
                break
            await asyncio.sleep(0.01)
        assert await reader.get("short") is None and not await reader.exists("short")
        assert await writer.strategy.delete_raw(["ads:short"]) == 0  # expired: not counted


async def test_the_container_builds_it_from_yaml_with_health_and_metrics(tmp_path: Path) -> None:
    path = tmp_path / "var" / "cache.sqlite3"
    config_file = tmp_path / "config.yml"
    config_file.write_text(
        f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/ads.db\n"
        f"cache:\n  cache_type: sqlite\n  options:\n    path: {path}\n"
        f"storage:\n  base_path: {tmp_path}/storage\n"
    )
    container = create_container(config_file)
    async with running(container):
        cache = container.cache.manager()
        assert type(cache.strategy).__name__ == "SQLiteCacheStrategy"
        await cache.set("k", "v")
        assert await cache.get("k") == "v"
        metrics = {
            (sample.name, sample.labels.get("backend"))
            for family in container.metrics().collect()
            for sample in family.samples
        }
        assert ("ads_cache_sets_total", "sqlite") in metrics
    assert [key for key, _ in _rows(path)] == ["ads:k"]
    reports = await collect_health(create_container(config_file))
    (report,) = [r for r in reports if r.component == "cache"]
    assert report.healthy and report.backend == "sqlite" and report.target == str(path)


async def test_a_file_that_cannot_be_opened_fails_fast_or_falls_back_like_redis(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache's folder should be")
    path = blocker / "cache.sqlite3"
    strict = CacheManager(_config(path, fallback_enabled=False))
    with pytest.raises(CacheError, match=r"cache start failed on sqlite at .*not-a-folder"):
        await strict.start()
    await strict.close()
    async with CacheManager(_config(path, fallback_enabled=True)) as cache:
        assert cache.in_fallback and cache.active_backend == "memory"
        await cache.set("k", 1)
        assert await cache.get("k") == 1  # served from memory meanwhile
        report = await cache.health_check()
        assert not report.healthy and "serving from memory" in report.detail
