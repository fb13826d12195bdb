"""Hostile cache input: a planted decompression bomb, a backtracking pattern, NaN.

Bounds are checked with a watchdog on the event loop (how long one step was
held up) and tracemalloc (peak memory), not with a throughput assertion.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis

from ads_infra.cache import CacheConfig, CacheManager, CacheType
from ads_infra.errors import CacheSerializationError

T = TypeVar("T")
BACKTRACKING = "*a" * 12 + "b"  # against a 40-character key: minutes with a regex


def zlib_bomb(expanded: int) -> bytes:
    """zlib of ``expanded`` spaces, built in chunks: a few hundred KB on the wire."""
    deflate, chunk, parts = zlib.compressobj(9), b" " * (1 << 20), []
    for _ in range(expanded // len(chunk)):
        parts.append(deflate.compress(chunk))
    parts.append(deflate.flush())
    return b"".join(parts)


async def watched(work: Awaitable[T]) -> tuple[T | BaseException, float, int]:
    """Run ``work``; return its outcome, the longest the loop was held up, peak memory."""
    longest = 0.0
    done = False

    async def watchdog() -> None:
        nonlocal longest
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            longest = max(longest, time.perf_counter() - before - 0.01)

    tracemalloc.start()
    dog = asyncio.create_task(watchdog())
    try:
        outcome: T | BaseException = await work
    except BaseException as exc:
        outcome = exc
    finally:
        done = True
        await dog
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, longest, peak


@pytest.fixture
async def redis_cache(redis_url: str, namespace: str) -> AsyncIterator[CacheManager]:
    manager = CacheManager(
        CacheConfig(cache_type=CacheType.REDIS, redis_url=redis_url, namespace=namespace)
    )
    await manager.start()
    yield manager
    await manager.clear()
    await manager.close()


async def test_a_planted_decompression_bomb_is_refused_in_bounded_memory_and_time(
    redis_cache: CacheManager, redis_url: str, namespace: str
) -> None:
    bomb = b"\x01" + zlib_bomb(256 << 20)  # 0x01: zlib-compressed JSON, 256 MiB inflated
    assert len(bomb) < 1 << 20
    raw = Redis.from_url(redis_url)
    await raw.set(f"{namespace}:planted", bomb)
    await raw.aclose()
    outcome, held, peak = await watched(redis_cache.get("planted"))
    # The manager reports the unreadable entry as a miss and counts the error.
    assert not isinstance(outcome, BaseException) or isinstance(outcome, CacheSerializationError)
    assert outcome is None or isinstance(outcome, CacheSerializationError)
    assert peak < 64 << 20, f"peak {peak / 2**20:.0f} MiB"
    assert held < 1.0, f"the event loop was held for {held:.2f} s"


@pytest.mark.parametrize("two_level", [False, True])
async def test_a_backtracking_pattern_does_not_block_the_loop(
    redis_url: str, namespace: str, two_level: bool
) -> None:
    if two_level:
        config = CacheConfig(
            cache_type=CacheType.REDIS, redis_url=redis_url, namespace=namespace, two_level=True
        )
    else:
        config = CacheConfig(namespace=namespace)
    manager = CacheManager(config)
    await manager.start()
    try:
        key = "a" * 40
        await manager.set(key, 1)
        await manager.get(key)  # two-level: a local copy too
        outcome, held, _ = await watched(manager.invalidate_pattern(BACKTRACKING))
        assert outcome == 0
        assert held < 1.0, f"the event loop was held for {held:.2f} s"
        assert await manager.get(key) == 1
        assert await manager.invalidate_pattern("*a*a*") == 1  # the matcher still matches
    finally:
        await manager.clear()
        await manager.close()


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), {"roas": float("-inf")}, [1, float("nan")]]
)
@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_nan_and_infinity_are_refused_not_read_back_as_a_miss(
    value: Any, backend: str, redis_url: str, namespace: str
) -> None:
    config = CacheConfig(namespace=namespace)
    if backend == "redis":
        config = CacheConfig(cache_type=CacheType.REDIS, redis_url=redis_url, namespace=namespace)
    manager = CacheManager(config)
    await manager.start()
    try:
        with pytest.raises(CacheSerializationError, match="NaN or infinity"):
            await manager.set("k", value)
        assert await manager.get("k", "absent") == "absent"  # nothing half-written
        await manager.set("k", {"ok": None})  # a None is fine
        assert await manager.get("k") == {"ok": None}
    finally:
        await manager.clear()
        await manager.close()
