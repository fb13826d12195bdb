"""Tests that need a Redis server of their own: bulk pattern deletion and faults.

The server is started by the ``private_redis`` fixture on a free port and is
the only one these tests stop; the machine's Redis is never touched.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from ads_infra.cache import CacheConfig, CacheManager, CacheType
from tests.redis_server import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def raw(private_redis: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(private_redis.url)
    yield client
    await client.aclose()


def _manager(server: RedisServer, **settings: Any) -> CacheManager:
    """A manager on ``server`` that notices an outage fast and probes often."""
    defaults: dict[str, Any] = {
        "socket_timeout": 0.2,
        "fallback_probe_interval": 0.1,
        "fallback_probe_max_interval": 0.3,
    }
    return CacheManager(
        CacheConfig(
            cache_type=CacheType.REDIS,
            redis_url=server.url,
            namespace="ads",
            **{**defaults, **settings},
        )
    )


async def _back_on_redis(manager: CacheManager, *, polls: int = 300) -> None:
    for _ in range(polls):  # the probe backs off to fallback_probe_max_interval at most
        if not manager.in_fallback:
            return
        await manager.get("probe")  # traffic, as an application would send
        await asyncio.sleep(0.05)
    raise AssertionError("the manager did not return to Redis")


def _keys_calls(info: dict[str, object]) -> int:
    stat = info.get("cmdstat_keys")
    return int(stat["calls"]) if isinstance(stat, dict) else 0


async def test_delete_pattern_removes_100k_keys_without_keys_command(
    private_redis: RedisServer, raw: Redis
) -> None:
    manager = CacheManager(
        CacheConfig(cache_type=CacheType.REDIS, redis_url=private_redis.url, namespace="ads")
    )
    # 100,000 matching keys, written by the manager in pipelined batches...
    for start in range(0, 100_000, 10_000):
        await manager.set_many({f"ad:{i}": i for i in range(start, start + 10_000)}, ttl=600)
    # ...and keys that must survive: same namespace other prefix, other namespace, no namespace.
    await manager.set_many({f"campaign:{i}": i for i in range(100)})
    await raw.set("other:ad:1", b"1")
    await raw.set("ad:1", b"1")
    before = _keys_calls(await raw.info("commandstats"))

    deleted = await manager.delete_pattern("ad:*")

    assert deleted == 100_000
    assert await raw.dbsize() == 102
    assert await manager.get("campaign:42") == 42
    assert await raw.get("other:ad:1") == b"1" and await raw.get("ad:1") == b"1"
    stats = await raw.info("commandstats")
    assert _keys_calls(stats) == before == 0
    assert int(stats["cmdstat_scan"]["calls"]) > 0
    assert int(stats["cmdstat_unlink"]["calls"]) >= 100
    await manager.close()


@pytest.mark.parametrize("auto_pipeline", [True, False], ids=["pipelined", "direct"])
async def test_server_killed_during_5000_operations(
    private_redis: RedisServer, raw: Redis, auto_pipeline: bool
) -> None:
    manager = _manager(
        private_redis,
        socket_timeout=1.0,
        pool_timeout=2.0,
        fallback_probe_max_interval=0.5,
        auto_pipeline=auto_pipeline,
    )
    await manager.start()
    completed = 0
    halfway = asyncio.Event()
    killed = asyncio.Event()

    async def worker(i: int) -> None:
        nonlocal completed
        for step in range(5):
            key = f"ad:{random.randrange(500)}"
            if step % 2:
                await manager.set(key, {"id": i, "step": step}, ttl=60)
            else:
                value = await manager.get(key)
                assert value is None or set(value) == {"id", "step"}
            completed += 1
            if completed == 5_000:
                halfway.set()

    async def killer() -> None:
        await halfway.wait()
        private_redis.stop()
        killed.set()

    # 5,000 concurrent callers; any exception reaching one fails the gather.
    await asyncio.gather(killer(), *(worker(i) for i in range(5_000)))

    assert killed.is_set() and completed == 25_000
    stats = await manager.get_stats()
    assert manager.in_fallback and stats["active_backend"] == "memory"
    assert stats["fallbacks"] > 0 and stats["errors"] > 0
    assert stats["hits"] + stats["misses"] + stats["sets"] == 25_000
    assert not (await manager.health_check()).healthy

    private_redis.start()  # same port, empty
    await _back_on_redis(manager)

    await manager.set("after", {"back": True})
    probe = Redis.from_url(private_redis.url)
    try:
        assert await probe.get("ads:after") == b'{"back":true}'
    finally:
        await probe.aclose()
    assert (await manager.health_check()).healthy
    await manager.close()


async def test_writes_during_an_outage_never_leave_stale_redis_values(
    private_redis: RedisServer, raw: Redis
) -> None:
    """CLIENT PAUSE makes Redis time out without losing data, then come back."""
    manager = _manager(private_redis)
    await manager.set("price", 1)
    await manager.set("gone", 1)
    await manager.set_many({"ad:1": 1, "ad:2": 2})
    await raw.execute_command("CLIENT", "PAUSE", "1500", "ALL")

    await manager.set("price", 2)  # times out: memory only, Redis still holds 1
    assert manager.in_fallback
    await manager.delete("gone")
    await manager.invalidate_pattern("ad:*")
    assert await manager.get("price") == 2 and await manager.get("gone") is None

    await _back_on_redis(manager)
    # Redis's old values were deleted on the way back: a miss, never the stale 1.
    assert await manager.get("price") is None
    assert await manager.get("gone") is None
    assert await manager.get_many(["ad:1", "ad:2"]) == {}
    assert await raw.dbsize() == 0
    await manager.close()


async def test_a_write_redis_refuses_is_not_reported_stored(
    private_redis: RedisServer, raw: Redis
) -> None:
    """Out of memory: the SET fails, and the key misses instead of reading the old value."""
    manager = _manager(private_redis, socket_timeout=1.0)
    await manager.set("price", 1)
    await manager.set_many({"a": 1, "b": 1})
    await raw.config_set("maxmemory-policy", "noeviction")
    await raw.config_set("maxmemory", "1")
    try:
        assert await manager.set("price", 2) is False
        assert await manager.set_many({"a": 2, "b": 2}) is False
        assert not manager.in_fallback  # Redis answers: no outage
        assert await manager.get("price") is None
        assert await manager.get_many(["a", "b"]) == {}
        stats = await manager.get_stats()
        assert stats["sets"] == 3 and stats["errors"] == 2
    finally:
        await raw.config_set("maxmemory", "0")
    await manager.close()


async def test_closing_during_an_outage_keeps_what_redis_must_forget(
    private_redis: RedisServer, raw: Redis
) -> None:
    manager = _manager(private_redis, fallback_probe_interval=0.2)
    await manager.set("price", 1)
    await raw.execute_command("CLIENT", "PAUSE", "1200", "ALL")
    await manager.set("price", 2)  # memory only; Redis still holds 1
    assert manager.in_fallback
    await manager.close()  # Redis is still paused: the change stays to be reconciled
    assert manager.in_fallback

    await asyncio.sleep(1.3)
    await manager.start()  # probes, deletes the stale 1, and returns to Redis
    await _back_on_redis(manager, polls=100)
    assert await raw.get("ads:price") is None
    assert await manager.get("price") is None  # a miss, never the overwritten 1
    await manager.close()


async def test_more_changes_than_tracked_clear_the_namespace_on_return(
    private_redis: RedisServer, raw: Redis
) -> None:
    manager = _manager(private_redis, max_size=2)
    await manager.set_many({"a": 1, "b": 1, "c": 1})
    await raw.set("other:a", b"kept")
    await raw.execute_command("CLIENT", "PAUSE", "1000", "ALL")
    for key in ("a", "b", "c"):
        await manager.set(key, 2)  # three changes, room to track two
    assert manager.in_fallback
    await _back_on_redis(manager)
    assert await manager.get_many(["a", "b", "c"]) == {}  # never the overwritten 1s
    assert await raw.get("other:a") == b"kept"
    await manager.close()


async def test_close_sends_what_was_queued_in_the_same_iteration(
    private_redis: RedisServer, raw: Redis
) -> None:
    manager = _manager(private_redis, socket_timeout=1.0)
    await manager.set("k", 1)
    got, _ = await asyncio.gather(manager.get("k"), manager.close())
    assert got == 1
    assert len(await raw.client_list()) == 1  # only this test's own client is left
