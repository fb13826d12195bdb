"""RedisClusterCacheStrategy against a 3-primary Redis Cluster started by a fixture."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from ads_infra.cache import CacheConfig, CacheManager, CacheType, RedisClusterCacheStrategy

pytestmark = pytest.mark.integration


@pytest.fixture
async def cluster_cache(redis_cluster_url: str, namespace: str) -> AsyncIterator[CacheManager]:
    manager = CacheManager(
        CacheConfig(
            cache_type=CacheType.REDIS_CLUSTER, redis_url=redis_cluster_url, namespace=namespace
        )
    )
    await manager.start()
    yield manager
    await manager.clear()
    await manager.close()


@pytest.fixture
async def raw_cluster(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster_url)
    await client.initialize()
    yield client
    await client.aclose()


async def test_cluster_strategy_is_selected(cluster_cache: CacheManager) -> None:
    assert isinstance(cluster_cache.strategy, RedisClusterCacheStrategy)
    health = await cluster_cache.health_check()
    assert health.healthy and health.backend == "redis_cluster"


async def test_get_set_across_slots(
    cluster_cache: CacheManager, raw_cluster: RedisCluster, namespace: str
) -> None:
    keys = [f"ad:{i}" for i in range(200)]
    nodes = {raw_cluster.get_node_from_key(f"{namespace}:{k}").name for k in keys}
    assert len(nodes) == 3  # the keys really spread over every primary
    for i, key in enumerate(keys[:20]):
        await cluster_cache.set(key, {"id": i}, ttl=60)
    for i, key in enumerate(keys[:20]):
        assert await cluster_cache.get(key) == {"id": i}
    assert 0 < await raw_cluster.ttl(f"{namespace}:ad:3") <= 60
    assert await cluster_cache.exists("ad:3")
    assert await cluster_cache.delete("ad:3") and not await cluster_cache.exists("ad:3")


async def test_get_many_set_many_across_slots(
    cluster_cache: CacheManager, raw_cluster: RedisCluster, namespace: str
) -> None:
    items = {f"ad:{i}": {"id": i} for i in range(300)}
    slots = {key_slot(f"{namespace}:{k}".encode()) for k in items}
    assert len(slots) > 100
    await cluster_cache.set_many(items, ttl=120)
    assert 0 < await raw_cluster.ttl(f"{namespace}:ad:250") <= 120
    assert await cluster_cache.get_many([*items, "absent"]) == items
    assert await cluster_cache.delete_many(["ad:1", "ad:2", "ad:299"]) == 3


async def test_delete_pattern_over_every_primary(
    cluster_cache: CacheManager, raw_cluster: RedisCluster, namespace: str
) -> None:
    await cluster_cache.set_many({f"ad:{i}": i for i in range(500)})
    await cluster_cache.set_many({f"campaign:{i}": i for i in range(50)})
    await raw_cluster.set("ad:1", b"outside the namespace")

    assert await cluster_cache.invalidate_pattern("ad:*") == 500

    assert await cluster_cache.get_many([f"ad:{i}" for i in range(500)]) == {}
    assert len(await cluster_cache.get_many([f"campaign:{i}" for i in range(50)])) == 50
    assert await raw_cluster.get("ad:1") == b"outside the namespace"
    await raw_cluster.unlink("ad:1")
    assert await cluster_cache.clear() == 50


async def test_two_level_across_slots_keeps_copies_no_longer_than_redis(
    redis_cluster_url: str, namespace: str, raw_cluster: RedisCluster
) -> None:
    manager = CacheManager(
        CacheConfig(
            cache_type=CacheType.REDIS_CLUSTER,
            redis_url=redis_cluster_url,
            namespace=namespace,
            two_level=True,
            local_ttl=30,
        )
    )
    keys = [f"k{i}" for i in range(20)]
    assert len({key_slot(f"{namespace}:{k}".encode()) for k in keys}) > 1  # several slots
    try:
        for key in keys:
            await raw_cluster.set(f"{namespace}:{key}", b"1", px=1500)
        assert await manager.get_many(keys) == dict.fromkeys(keys, 1)  # copied locally
        await asyncio.sleep(1.6)
        assert await manager.get_many(keys) == {}  # expired on the cluster, so locally too
    finally:
        await manager.clear()
        await manager.close()
