"""CacheManager against the machine's Redis (database 15, a unique namespace per test)."""

from __future__ import annotations

import asyncio
import itertools
import random
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from ads_infra.cache import CacheConfig, CacheManager, CacheType, RedisCacheStrategy
from ads_infra.cache.glob import compile_glob, glob_escape
from ads_infra.errors import CacheError, CacheSerializationError
from tests.redis_server import REDIS_CLI
from tests.services import free_port

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[3] / "config.yml"


@pytest.fixture
async def raw(redis_url: str, namespace: str) -> AsyncIterator[Redis]:
    """A plain redis-py client; deletes the test's namespace afterwards."""
    client = Redis.from_url(redis_url)
    yield client
    async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        await client.unlink(key)
    await client.aclose()


@pytest.fixture
async def cache(redis_url: str, namespace: str, raw: Redis) -> AsyncIterator[CacheManager]:
    manager = CacheManager(
        CacheConfig(cache_type=CacheType.REDIS, redis_url=redis_url, namespace=namespace)
    )
    await manager.start()
    yield manager
    await manager.close()


async def test_seed_snippet_runs_as_written(redis_url: str, namespace: str, raw: Redis) -> None:
    value = {"headline": "Save 30%", "bid_micros": 1_250_000, "tags": ["a", "b"]}
    cache_config = CacheConfig(
        default_ttl=300,
        max_size=1000,
        cache_type=CacheType.REDIS,
        redis_url=redis_url,
        namespace=namespace,
    )
    cache_manager = CacheManager(cache_config)

    await cache_manager.set("key", value, ttl=600)
    cached_value = await cache_manager.get("key")
    assert cached_value == value
    assert await raw.exists(f"{namespace}:key") == 1
    await cache_manager.delete("key")
    assert await cache_manager.get("key") is None
    assert await raw.exists(f"{namespace}:key") == 0

    cache_stats = await cache_manager.get_stats()
    assert f"{cache_stats['hit_rate']:.2%}" == "50.00%"
    assert cache_stats["backend"] == "redis"
    await cache_manager.close()


def test_redis_url_defaults_to_local_redis() -> None:
    config = CacheConfig(default_ttl=300, max_size=1000, cache_type=CacheType.REDIS)
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert CacheManager(config).backend == "redis"


async def test_ttl_seen_by_another_client(
    cache: CacheManager, redis_url: str, namespace: str
) -> None:
    assert REDIS_CLI is not None
    await cache.set("ttl-key", "v", ttl=120)
    cli = await asyncio.create_subprocess_exec(
        REDIS_CLI, "-u", redis_url, "TTL", f"{namespace}:ttl-key", stdout=subprocess.PIPE
    )
    out, _ = await cli.communicate()
    assert 0 < int(out.strip()) <= 120

    await cache.set("default-ttl", "v")  # default_ttl 300
    await cache.set("fractional", "v", ttl=1.5)  # PX
    await cache.set("forever", "v", ttl=0)
    raw = Redis.from_url(redis_url)
    try:
        assert 0 < await raw.ttl(f"{namespace}:default-ttl") <= 300
        assert 0 < await raw.pttl(f"{namespace}:fractional") <= 1500
        assert await raw.ttl(f"{namespace}:forever") == -1
    finally:
        await raw.aclose()


async def test_keys_live_under_the_namespace_as_readable_json(
    cache: CacheManager, raw: Redis, namespace: str
) -> None:
    await cache.set("ad:1", {"id": 1, "name": "banner"})
    assert await raw.get(f"{namespace}:ad:1") == b'{"id":1,"name":"banner"}'
    assert await raw.get("ad:1") is None
    assert [k async for k in raw.scan_iter(match=f"*{namespace}*")] == [
        f"{namespace}:ad:1".encode()
    ]


async def test_large_values_are_compressed_and_marked(
    cache: CacheManager, raw: Redis, namespace: str
) -> None:
    big = {"description": "free shipping " * 500}
    await cache.set("big", big)
    stored = await raw.get(f"{namespace}:big")
    assert stored is not None and stored[0] == 0x01  # zlib-compressed JSON marker
    assert len(stored) < len(str(big)) / 4
    assert await cache.get("big") == big


async def test_multi_key_operations(cache: CacheManager, raw: Redis, namespace: str) -> None:
    items = {f"ad:{i}": {"id": i} for i in range(50)}
    await cache.set_many(items, ttl=60)
    assert 0 < await raw.ttl(f"{namespace}:ad:7") <= 60
    found = await cache.get_many([*items, "absent"])
    assert found == items
    assert await cache.exists("ad:3") and not await cache.exists("absent")
    assert await cache.delete_many(["ad:1", "ad:2", "absent"]) == 2
    assert await cache.invalidate_pattern("ad:1*") == 10  # ad:10..19
    assert await cache.get_many(items) == {
        k: v for k, v in items.items() if not k.startswith("ad:1") and k != "ad:2"
    }
    assert await cache.clear() == 38
    assert [k async for k in raw.scan_iter(match=f"{namespace}:*")] == []


async def test_get_or_set_calls_the_factory_once_for_100_callers(cache: CacheManager) -> None:
    calls = 0

    async def load() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"id": 7}

    results = await asyncio.gather(*(cache.get_or_set("cold", load, ttl=60) for _ in range(100)))
    assert calls == 1
    assert results == [{"id": 7}] * 100
    assert await cache.get_or_set("cold", load) == {"id": 7}
    assert calls == 1


async def test_unserializable_value_is_a_clear_error(cache: CacheManager) -> None:
    with pytest.raises(CacheSerializationError, match="cannot serialize a object"):
        await cache.set("bad", object())
    assert await cache.get("bad") is None


def _two_level(redis_url: str, namespace: str, *, auto_pipeline: bool = True) -> CacheManager:
    """A two-level manager whose local copies would last 30 s if nothing shortened them."""
    return CacheManager(
        CacheConfig(
            cache_type=CacheType.REDIS,
            redis_url=redis_url,
            namespace=namespace,
            two_level=True,
            local_ttl=30,
            auto_pipeline=auto_pipeline,
        )
    )


async def test_two_level_mode_serves_repeat_reads_from_memory(
    redis_url: str, namespace: str, raw: Redis
) -> None:
    manager = _two_level(redis_url, namespace)
    try:
        await manager.set("ad:1", {"v": 1})
        await raw.set(f"{namespace}:ad:1", b'{"v":2}')  # another process writes
        assert await manager.get("ad:1") == {"v": 1}  # local copy, up to local_ttl old
        await manager.delete("ad:1")
        assert await manager.get("ad:1") is None
        await raw.set(f"{namespace}:ad:2", b'{"v":3}')
        assert await manager.get("ad:2") == {"v": 3}
        await raw.unlink(f"{namespace}:ad:2")
        assert await manager.get("ad:2") == {"v": 3}  # read-through copy
    finally:
        await manager.close()


@pytest.mark.parametrize("auto_pipeline", [True, False], ids=["pipelined", "direct"])
async def test_two_level_reads_racing_a_write_do_not_keep_the_old_value(
    redis_url: str, namespace: str, raw: Redis, auto_pipeline: bool
) -> None:
    manager = _two_level(redis_url, namespace, auto_pipeline=auto_pipeline)
    try:
        await raw.set(f"{namespace}:gone", b'"old"')
        await raw.set(f"{namespace}:price", b"1")
        await raw.set(f"{namespace}:many", b"1")
        # Each read is sent before the write; its reply arrives after the write began.
        got = await asyncio.gather(manager.get("gone"), manager.delete("gone"))
        assert got[1] is True
        await asyncio.gather(manager.get("price"), manager.set("price", 2))
        await asyncio.gather(manager.get_many(["many"]), manager.set_many({"many": 2}))
        assert await manager.get("gone") is None  # not the value read before the delete
        assert await manager.get("price") == 2
        assert await manager.get_many(["many"]) == {"many": 2}
    finally:
        await manager.close()


@pytest.mark.parametrize("auto_pipeline", [True, False], ids=["pipelined", "direct"])
async def test_two_level_copies_expire_with_the_redis_entry(
    redis_url: str, namespace: str, raw: Redis, auto_pipeline: bool
) -> None:
    manager = _two_level(redis_url, namespace, auto_pipeline=auto_pipeline)
    try:
        # Written by another process with a short TTL: read through, copied locally.
        await raw.set(f"{namespace}:one", b"1", px=1500)
        await raw.set(f"{namespace}:many", b"2", px=1500)
        await raw.set(f"{namespace}:forever", b"3")
        assert await manager.get("one") == 1
        assert await manager.get_many(["many", "forever"]) == {"many": 2, "forever": 3}
        await asyncio.sleep(1.6)  # Redis has expired both; local_ttl (30 s) has not
        assert await manager.get("one") is None
        assert await manager.get_many(["many"]) == {}
        await raw.unlink(f"{namespace}:forever")
        assert await manager.get("forever") == 3  # no Redis TTL: kept for local_ttl
    finally:
        await manager.close()


async def test_without_fallback_start_fails_fast_without_secrets() -> None:
    port = free_port()  # nothing listens here
    manager = CacheManager(
        CacheConfig(
            cache_type=CacheType.REDIS,
            redis_url=f"redis://user:s3cret-pw@127.0.0.1:{port}/0",
            fallback_enabled=False,
            socket_timeout=0.5,
        )
    )
    with pytest.raises(CacheError) as caught:
        await manager.start()
    message = str(caught.value)
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(manager)
    assert f"127.0.0.1:{port}" in message and "fallback_enabled" in message
    health = await manager.health_check()
    assert not health.healthy and health.component == "cache" and health.backend == "redis"
    assert "s3cret-pw" not in str(health)
    await manager.close()


async def test_with_fallback_start_serves_from_memory(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    manager = CacheManager(
        CacheConfig(
            cache_type=CacheType.REDIS,
            redis_url=f"redis://127.0.0.1:{port}/0",
            fallback_probe_interval=5,
        )
    )
    await manager.start()
    assert manager.in_fallback
    await manager.set("k", {"v": 1})
    assert await manager.get("k") == {"v": 1}
    stats = await manager.get_stats()
    assert stats["active_backend"] == "memory" and stats["fallbacks"] == 2
    assert sum("serving from memory" in r.message for r in caplog.records) == 1
    await manager.close()


async def test_health_check_reports_redis(cache: CacheManager) -> None:
    health = await cache.health_check()
    assert health.healthy and health.backend == "redis" and health.component == "cache"
    assert health.latency_ms is not None and health.latency_ms >= 0


async def test_strategy_alone_offers_the_same_api(
    redis_url: str, namespace: str, raw: Redis
) -> None:
    strategy = RedisCacheStrategy(
        CacheConfig(cache_type=CacheType.REDIS, redis_url=redis_url, namespace=namespace)
    )
    try:
        await strategy.set("a", [1, 2], ttl=30)
        await strategy.set_many({"b": 2, "c": 3})
        assert await strategy.get("a") == [1, 2]
        assert await strategy.get_many(["a", "b", "x"]) == {"a": [1, 2], "b": 2}
        assert await strategy.exists("c")
        assert await strategy.delete("c") and not await strategy.delete("c")
        assert await strategy.delete_pattern("*") == 2
    finally:
        await strategy.close()


_GLOB_ALPHABET = ["a", "b", "-", "]", "[", "^", "\\", "z", "é", "?", "*"]
# Redis's odd corners: a "]" right after "[", ranges ending at "]", open classes,
# escapes inside classes, reversed ranges, bytes of a multi-byte character.
_GLOB_PATTERNS = ["*", "ad:?", "ad:*", "a[bd]*", "a[^d]", "ad:[0-9]", "a\\*", "\\[x\\]",
                  "[a-a]?", "[a-]", "[]a]", "[^]", "[^]]*", "a\\", "[\\]]", "[a-\\z]",
                  "[z-a]", "?", "??", "[", "[a", "*[", "[-a]", "[a-b-z]", "\\[*", "[^a-]",
                  "[é]", "[^é]?", "[a-é]"]  # fmt: skip


async def test_memory_globs_match_what_redis_matches(raw: Redis, namespace: str) -> None:
    keys = {"ad:1", "ad:22", "ab", "a*", "[x]"} | {
        "".join(p) for n in range(3) for p in itertools.product(_GLOB_ALPHABET, repeat=n)
    }
    await raw.mset({f"{namespace}:{key}": b"1" for key in keys})
    rng = random.Random(7)
    patterns = _GLOB_PATTERNS + [
        "".join(rng.choice(_GLOB_ALPHABET) for _ in range(rng.randint(1, 4))) for _ in range(150)
    ]
    prefix = glob_escape(f"{namespace}:")
    for pattern in patterns:
        on_redis = {
            k.decode()[len(namespace) + 1 :]
            async for k in raw.scan_iter(match=prefix + pattern, count=10_000)
        }
        regex = compile_glob(pattern)
        assert {k for k in keys if regex.match(k.encode())} == on_redis, pattern


async def test_a_refused_command_fails_one_call_not_the_backend(
    cache: CacheManager, raw: Redis, namespace: str
) -> None:
    await raw.hset(f"{namespace}:foreign", mapping={"a": "1"})  # WRONGTYPE for GET
    assert await cache.get("foreign") is None
    stats = await cache.get_stats()
    assert stats["errors"] == 1 and stats["fallbacks"] == 1
    assert not cache.in_fallback  # the breaker stays closed: Redis is fine
    await cache.set("fine", 1)
    assert await raw.get(f"{namespace}:fine") == b"1"


async def test_a_refused_command_without_fallback_is_a_cache_error(
    redis_url: str, namespace: str, raw: Redis
) -> None:
    manager = CacheManager(
        CacheConfig(
            cache_type=CacheType.REDIS,
            redis_url=redis_url,
            namespace=namespace,
            fallback_enabled=False,
        )
    )
    await raw.hset(f"{namespace}:foreign", mapping={"a": "1"})
    with pytest.raises(CacheError, match="WRONGTYPE"):
        await manager.get("foreign")
    await manager.close()


async def test_container_switches_to_redis_by_environment(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str, raw: Redis
) -> None:
    from ads_infra.containers import create_container

    monkeypatch.setenv("ADS_CACHE_TYPE", "redis")
    monkeypatch.setenv("ADS_REDIS_URL", redis_url)
    container = create_container(CONFIG, cache={"namespace": namespace})
    manager = container.cache.manager()
    await container.cache.lifecycle.init()  # what init_resources() runs for the cache
    try:
        assert isinstance(manager.strategy, RedisCacheStrategy) and not manager.in_fallback
        await manager.set("via-container", {"ok": True})
        assert await raw.get(f"{namespace}:via-container") == b'{"ok":true}'
    finally:
        await container.cache.lifecycle.shutdown()
    assert manager.strategy._client is None  # the pool was closed


async def test_async_with_pings_redis_and_releases_the_pool(
    redis_url: str, namespace: str, raw: Redis
) -> None:
    config = CacheConfig(cache_type=CacheType.REDIS, redis_url=redis_url, namespace=namespace)
    async with CacheManager(config) as manager:
        assert not manager.in_fallback
        assert await manager.set("k", 1) and await manager.get("k") == 1
        assert manager.strategy._client is not None
    assert manager.strategy._client is None
    assert await raw.get(f"{namespace}:k") == b"1"
