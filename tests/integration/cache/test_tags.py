"""Tags on Redis, Redis Cluster, two-level copies across managers and during an outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from ads_infra.cache import CacheConfig, CacheManager, CacheType
from ads_infra.coordination import Coordinator
from ads_infra.core.errors import CacheError
from ads_infra.core.settings import CoordinationConfig
from tests.redis_server import RedisServer

pytestmark = pytest.mark.integration


def _manager(url: str, namespace: str, **settings: Any) -> CacheManager:
    return CacheManager(
        CacheConfig(cache_type=CacheType.REDIS, redis_url=url, namespace=namespace, **settings)
    )


@pytest.fixture
async def raw(redis_url: str, namespace: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        await client.unlink(key)
    await client.aclose()


@pytest.mark.parametrize("auto_pipeline", [True, False])
async def test_invalidating_a_tag_deletes_its_keys_and_its_set(
    redis_url: str, namespace: str, raw: Redis, auto_pipeline: bool
) -> None:
    async with _manager(redis_url, namespace, auto_pipeline=auto_pipeline) as cache:
        await cache.set("ad:1", 1, ttl=60, tags=["user:1"])
        await cache.set_many({"ad:2": 2, "ad:3": 3}, ttl=0, tags=["user:1", "campaign:9"])
        await cache.set("ad:4", 4, tags=["user:2"])
        await cache.set("plain", 5)
        assert await cache.get_or_set("ad:5", lambda: 6, ttl=30, tags=["user:1"]) == 6
        # The tag's set lives as long as its longest-lived member: ad:2 never expires.
        tag_set = f"{namespace}:\x00tag:user:1"
        assert await raw.scard(tag_set) == 4
        assert await raw.pttl(tag_set) > 10**9 * 1000 - 60_000

        assert await cache.invalidate_tags("user:1") == 4
        assert await cache.get_many(["ad:1", "ad:2", "ad:3", "ad:5"]) == {}
        assert await cache.get("ad:4") == 4 and await cache.get("plain") == 5
        assert not await raw.exists(tag_set)
        assert await raw.smembers(f"{namespace}:\x00tag:campaign:9") == {
            f"{namespace}:ad:2".encode(),
            f"{namespace}:ad:3".encode(),
        }
        assert await cache.invalidate_tags("campaign:9") == 0  # its keys went with user:1
        await cache.clear()
        assert await raw.dbsize() == 0 or not [k async for k in raw.scan_iter(f"{namespace}:*")]


async def test_a_short_ttl_does_not_shorten_a_tag_set_holding_longer_keys(
    redis_url: str, namespace: str, raw: Redis
) -> None:
    async with _manager(redis_url, namespace) as cache:
        await cache.set("long", 1, ttl=3600, tags=["t"])
        await cache.set("short", 1, ttl=5, tags=["t"])
        assert await raw.pttl(f"{namespace}:\x00tag:t") > 3_000_000
        assert await cache.invalidate_tags("t") == 2


async def test_a_large_tag_is_invalidated_in_batches(
    redis_url: str, namespace: str, raw: Redis
) -> None:
    async with _manager(redis_url, namespace, scan_batch_size=100) as cache:
        await cache.set_many({f"k{i}": i for i in range(1_050)}, tags=["big"])
        await cache.set("other", 1)
        assert await cache.invalidate_tags("big") == 1_050
        assert await cache.get_many(["k0", "k1049"]) == {}
        assert await cache.get("other") == 1


async def test_tags_on_redis_cluster(redis_cluster_url: str, namespace: str) -> None:
    config = CacheConfig(
        cache_type=CacheType.REDIS_CLUSTER, redis_url=redis_cluster_url, namespace=namespace
    )
    raw = RedisCluster.from_url(redis_cluster_url)
    try:
        async with CacheManager(config) as cache:
            keys = {f"ad:{i}": i for i in range(50)}  # spread over every primary
            await cache.set_many(keys, tags=["user:1"])
            await cache.set("ad:x", 1, tags=["user:2"])
            assert await cache.invalidate_tags("user:1") == 50
            assert await cache.get_many(list(keys)) == {}
            assert await cache.get("ad:x") == 1
            await cache.clear()
    finally:
        await raw.aclose()


@pytest.fixture
async def two_processes(
    redis_url: str, namespace: str
) -> AsyncIterator[tuple[CacheManager, CacheManager, str]]:
    """A writer and a reader in two-level mode on one fleet link, and its invalidation channel."""
    fleets = [
        Coordinator(
            CoordinationConfig(
                backend="redis",  # type: ignore[arg-type]
                redis_url=redis_url,
                key_prefix=f"{namespace}:coord",
            )
        )
        for _ in range(2)
    ]
    config = CacheConfig(
        cache_type=CacheType.REDIS,
        redis_url=redis_url,
        namespace=namespace,
        two_level=True,
        local_ttl=60,
    )
    caches = [CacheManager(config, fleet=fleet) for fleet in fleets]
    for fleet in fleets:
        await fleet.start()
    for cache in caches:
        await cache.start()
    try:
        await asyncio.sleep(0.5)  # the bus subscribes
        yield caches[0], caches[1], fleets[0].invalidation_channel
    finally:
        for cache in caches:
            await cache.close()
        for fleet in fleets:
            await fleet.close()


async def test_two_level_copies_in_other_processes_are_dropped(
    two_processes: tuple[CacheManager, CacheManager, str], namespace: str, raw: Redis
) -> None:
    """Two managers on one fleet link: a tag invalidated by one drops the other's copies."""
    writer, reader, _ = two_processes
    await writer.set("ad:1", 1, tags=["user:1"])
    assert await reader.get("ad:1") == 1  # now a local copy in the reader
    await raw.set(f"{namespace}:ad:1", b"1")  # invisible to the reader's copy...
    assert await writer.invalidate_tags("user:1") == 1
    for _ in range(100):  # ...until the announcement arrives
        if await reader.get("ad:1") is None:
            break
        await asyncio.sleep(0.02)
    assert await reader.get("ad:1") is None
    assert await writer.get("ad:1") is None  # its own copy went at once


async def test_a_large_invalidation_is_announced_in_bounded_messages(
    two_processes: tuple[CacheManager, CacheManager, str], raw: Redis
) -> None:
    """2,500 keys go out as several announcements (a million in one would pass Redis's
    pub/sub buffer limit and disconnect the fleet), and the other process drops them all."""
    from ads_infra.cache.coherence import MAX_KEYS_PER_MESSAGE

    writer, reader, channel = two_processes
    listener = raw.pubsub()
    await listener.subscribe(channel)
    try:
        keys = {f"ad:{i}": i for i in range(2_500)}
        await writer.set_many(keys, tags=["user:1"])
        assert len(await reader.get_many(list(keys))) == 2_500  # local copies now
        while await listener.get_message(timeout=0.2) is not None:
            pass  # the subscription's confirmation and what set_many announced
        assert await writer.invalidate_tags("user:1") == 2_500
        sizes = []
        while (message := await listener.get_message(timeout=1.0)) is not None:
            if message["type"] == "message":
                sizes.append(message["data"].count(b"\x00") + 1)
        assert len(sizes) >= 3 and max(sizes) <= MAX_KEYS_PER_MESSAGE + 1, sizes
        for _ in range(100):
            if not await reader.get_many(list(keys)):
                break
            await asyncio.sleep(0.05)
        assert await reader.get_many(list(keys)) == {}
    finally:
        await listener.aclose()


async def test_a_tag_invalidated_during_an_outage_is_invalidated_on_return(
    private_redis: RedisServer,
) -> None:
    raw = Redis.from_url(private_redis.url)
    cache = _manager(
        private_redis.url,
        "ads",
        socket_timeout=0.2,
        fallback_probe_interval=0.1,
        fallback_probe_max_interval=0.3,
    )
    try:
        await cache.set("ad:1", 1, tags=["user:1"])
        await cache.set("ad:2", 2, tags=["user:2"])
        await raw.execute_command("CLIENT", "PAUSE", "1200", "ALL")
        await cache.set("ad:3", 3, tags=["user:1"])  # times out: memory only
        assert cache.in_fallback
        assert await cache.invalidate_tags("user:1") == 1  # ad:3, in memory
        assert await cache.get("ad:3") is None
        for _ in range(300):
            if not cache.in_fallback:
                break
            await cache.get("probe")
            await asyncio.sleep(0.05)
        assert not cache.in_fallback
        assert await cache.get("ad:1") is None  # never the value tagged before the outage
        assert await raw.get("ads:ad:1") is None
        assert await cache.get("ad:2") == 2
    finally:
        await cache.close()
        await raw.aclose()


async def test_a_tag_whose_delete_failed_midway_still_finds_its_keys(
    private_redis: RedisServer,
) -> None:
    """SPOP took the members out of the set, then the UNLINK failed: the keys are
    still cached, so invalidating the tag again must still find them."""
    raw = Redis.from_url(private_redis.url)
    cache = _manager(private_redis.url, "ads", fallback_enabled=False)
    try:
        await cache.set("ad:1", 1, tags=["user:1"])
        # The server refuses UNLINK (as a dropped connection would fail it) after SPOP.
        await raw.execute_command("ACL", "SETUSER", "default", "-unlink")
        try:
            with pytest.raises(CacheError, match="invalidate_tags"):
                await cache.invalidate_tags("user:1")
        finally:
            await raw.execute_command("ACL", "SETUSER", "default", "+unlink")
        assert await cache.invalidate_tags("user:1") == 1
        assert await cache.get("ad:1") is None
    finally:
        await cache.close()
        await raw.aclose()


async def test_a_two_level_copy_is_dropped_by_a_tag_invalidated_during_an_outage(
    private_redis: RedisServer,
) -> None:
    """The copy this process keeps of a key tagged before the outage is served from
    memory during it: invalidating its tag then must drop that copy too."""
    raw = Redis.from_url(private_redis.url)
    cache = _manager(
        private_redis.url,
        "ads",
        two_level=True,
        local_ttl=60,
        socket_timeout=0.2,
        fallback_probe_interval=0.1,
        fallback_probe_max_interval=0.3,
    )
    try:
        await cache.set("ad:1", 1, tags=["user:1"])
        assert await cache.get("ad:1") == 1  # a copy in memory too
        await raw.execute_command("CLIENT", "PAUSE", "1200", "ALL")
        await cache.set("ad:2", 2)  # times out: the outage begins
        assert cache.in_fallback
        await cache.invalidate_tags("user:1")
        assert await cache.get("ad:1") is None
    finally:
        await cache.close()
        await raw.aclose()
