"""``ads-infra bench cache``: CacheManager against raw redis-py, a bare dict, aiocache and cashews.

Every contender does the same work in the same run: an ad-sized JSON object
(~700 bytes), serialized with orjson, written with a 300 s TTL and read back,
by the same number of concurrent tasks over a 50-connection pool. aiocache is
given an orjson serializer and cashews stores the orjson bytes as-is
(``pickle_type=null``), so the peers are compared on their cache layer, not on
stdlib json. Each contender runs many short interleaved rounds and its
median counts, so a noisy neighbour hurts every side alike.

The manager's Redis rows are shown twice: with auto-pipelining (the default:
concurrent calls in one loop iteration share one round trip) and without it
(one round trip per call, exactly what the others do).

Redis is ADS_BENCH_REDIS_URL, else ADS_TEST_REDIS_URL, else
redis://127.0.0.1:6379/15; every key lives under a fresh namespace that is
deleted (SCAN + UNLINK) at the end.
"""

from __future__ import annotations

import itertools
import os
import statistics
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ads_infra.cache import CacheConfig, CacheManager, CacheType
from benchmarks.report import Measurement, measure_ops

AREA = "cache"
SETUP = "memory and Redis (db of ADS_BENCH_REDIS_URL), 50 tasks, pool 50"
CONCURRENCY = 50
POOL_SIZE = 50
TTL = 300
KEYS = 1000

AD: dict[str, Any] = {
    "id": 123456,
    "user_id": 42,
    "campaign_id": 777,
    "group_id": 888,
    "name": "Summer sale banner",
    "ad_type": "display",
    "status": "active",
    "headline": "Save 30% on summer shoes today only",
    "description": "Free shipping on orders over $50. Limited time offer, shop now and "
    "save big on top brands. Free returns within 30 days on every pair.",
    "final_url": "https://shop.example.com/summer?utm_source=ads&utm_campaign=777",
    "creative_key": "creatives/2024/06/abc123def456.png",
    "metadata": {
        "tags": ["summer", "shoes", "sale"],
        "targeting": {"age": [18, 45], "geo": ["US", "CA"], "devices": ["mobile", "desktop"]},
        "score": 0.87,
        "bid_amount_micros": 1_250_000,
    },
    "created_at": "2024-06-01T12:00:00Z",
    "updated_at": "2024-06-02T08:30:00Z",
}

Op = Callable[[], Awaitable[Any]]


def _redis_url() -> str:
    return (
        os.environ.get("ADS_BENCH_REDIS_URL")
        or os.environ.get("ADS_TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/15"
    )


def _key_cycle(prefix: str) -> Callable[[], str]:
    return itertools.cycle([f"{prefix}ad:{i}" for i in range(KEYS)]).__next__


async def _median(contenders: dict[str, Op], *, operations: int, rounds: int) -> dict[str, float]:
    """Median ops/s of each contender over short rounds, rotating who goes first.

    Many short interleaved rounds and the median of each side keep a noisy
    shared machine (other processes, GC, CPU frequency) from deciding the ratio.
    """
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for round_no in range(rounds):
        shift = round_no % len(order)
        for name in order[shift:] + order[:shift]:
            ops = await measure_ops(
                contenders[name], operations=operations, concurrency=CONCURRENCY
            )
            samples[name].append(ops)
    return {name: statistics.median(values) for name, values in samples.items()}


# --- memory -------------------------------------------------------------------------


async def _bench_memory(operations: int, rounds: int) -> list[Measurement]:
    manager = CacheManager(CacheConfig(max_size=KEYS * 2, default_ttl=TTL))
    store: dict[str, bytes] = {}
    dumps, loads = orjson.dumps, orjson.loads

    # The baseline: the least an async cache of serialized values can do.
    async def dict_set(key: str, value: Any) -> None:
        store[key] = dumps(value)

    async def dict_get(key: str) -> Any:
        data = store.get(key)
        return None if data is None else loads(data)

    ours_key, dict_key = _key_cycle(""), _key_cycle("bench:")
    sets = await _median(
        {
            "ours": lambda: manager.set(ours_key(), AD, TTL),
            "dict": lambda: dict_set(dict_key(), AD),
        },
        operations=operations,
        rounds=rounds,
    )
    gets = await _median(
        {"ours": lambda: manager.get(ours_key()), "dict": lambda: dict_get(dict_key())},
        operations=operations,
        rounds=rounds,
    )
    assert await manager.get("ad:1") == AD
    note = f"{CONCURRENCY} tasks, ~{len(dumps(AD))} B orjson payload"
    return [
        Measurement(
            AREA,
            f"memory {name}",
            result["ours"],
            "bare dict",
            result["dict"],
            target=0.8,
            note=note,
        )
        for name, result in (("set", sets), ("get", gets))
    ]


# --- redis --------------------------------------------------------------------------


class _OrjsonSerializer:
    """aiocache serializer with orjson, so aiocache does the same work as the others."""

    DEFAULT_ENCODING = None
    encoding = None

    def dumps(self, value: Any) -> bytes:
        return orjson.dumps(value)

    def loads(self, value: bytes | None) -> Any:
        return None if value is None else orjson.loads(value)


async def _bench_redis(url: str, operations: int, rounds: int) -> list[Measurement]:
    from urllib.parse import urlsplit

    from aiocache import RedisCache
    from cashews import Cache
    from redis.asyncio import BlockingConnectionPool, Redis

    namespace = f"bench_{uuid.uuid4().hex[:8]}"

    def manager_for(auto_pipeline: bool) -> CacheManager:
        return CacheManager(
            CacheConfig(
                cache_type=CacheType.REDIS,
                redis_url=url,
                namespace=namespace,
                default_ttl=TTL,
                redis_max_connections=POOL_SIZE,
                auto_pipeline=auto_pipeline,
            )
        )

    manager, direct = manager_for(True), manager_for(False)
    raw = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE))
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    aio = RedisCache(
        serializer=_OrjsonSerializer(),
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=db,
        pool_max_size=POOL_SIZE,
        namespace=f"{namespace}:aiocache",
    )
    cashews = Cache()
    cashews.setup(url, pickle_type="null", max_connections=POOL_SIZE, suppress=False)
    dumps, loads = orjson.dumps, orjson.loads

    async def raw_get(key: str) -> Any:
        data = await raw.get(key)
        return None if data is None else loads(data)

    async def cashews_get(key: str) -> Any:
        data = await cashews.get(key)
        return None if data is None else loads(data)

    keys = {
        "ours": _key_cycle("ours:"),
        "direct": _key_cycle("direct:"),
        "raw": _key_cycle(f"{namespace}:raw:"),
        "aiocache": _key_cycle(""),
        "cashews": _key_cycle(f"{namespace}:cashews:"),
    }
    try:
        await manager.start()
        await raw.ping()
        sets = await _median(
            {
                "ours": lambda: manager.set(keys["ours"](), AD, TTL),
                "direct": lambda: direct.set(keys["direct"](), AD, TTL),
                "raw": lambda: raw.set(keys["raw"](), dumps(AD), ex=TTL),
                "aiocache": lambda: aio.set(keys["aiocache"](), AD, ttl=TTL),
                "cashews": lambda: cashews.set(keys["cashews"](), dumps(AD), expire=TTL),
            },
            operations=operations,
            rounds=rounds,
        )
        gets = await _median(
            {
                "ours": lambda: manager.get(keys["ours"]()),
                "direct": lambda: direct.get(keys["direct"]()),
                "raw": lambda: raw_get(keys["raw"]()),
                "aiocache": lambda: aio.get(keys["aiocache"]()),
                "cashews": lambda: cashews_get(keys["cashews"]()),
            },
            operations=operations,
            rounds=rounds,
        )
        for check in (
            manager.get("ours:ad:1"),
            direct.get("direct:ad:1"),
            raw_get(f"{namespace}:raw:ad:1"),
            aio.get("ad:1"),
            cashews_get(f"{namespace}:cashews:ad:1"),
        ):
            assert await check == AD, "a contender did not store the payload"
        stats = await manager.get_stats()
    finally:
        cleaner = CacheManager(
            CacheConfig(cache_type=CacheType.REDIS, redis_url=url, namespace=namespace)
        )
        await cleaner.clear()
        await cleaner.close()
        await manager.close()
        await direct.close()
        await raw.aclose()
        await aio.close()
        await cashews.close()
    note = (
        f"{CONCURRENCY} tasks, pool {POOL_SIZE}, ~{len(dumps(AD))} B orjson payload; "
        f"manager mean latency {stats['mean_latency_ms']:.2f} ms"
    )
    peers = ("aiocache", "cashews")
    return [
        Measurement(
            AREA,
            f"redis {name}{suffix}",
            result[ours],
            "raw redis-py",
            result["raw"],
            peers={peer: result[peer] for peer in peers},
            target=0.9,
            peer_target=peer_target,
            note=note + extra,
        )
        for ours, suffix, extra, peer_target in (
            ("ours", "", "; auto_pipeline on (the default)", 1.2),
            # Shown for honesty: where the speed-up comes from. No peer target.
            ("direct", " (auto_pipeline off)", "; one round trip per call, like the others", None),
        )
        for name, result in (("set", sets), ("get", gets))
    ]


async def run(*, quick: bool) -> list[Measurement]:
    """Memory and Redis figures; Redis rows are left out (with a note) when it is down."""
    import logging

    from redis.exceptions import RedisError

    # (operations per round, rounds): --quick keeps the whole area near 10 s.
    memory, redis = ((8_000, 11), (500, 5)) if quick else ((20_000, 25), (4_000, 7))
    results = await _bench_memory(*memory)
    url = _redis_url()
    try:
        results += await _bench_redis(url, *redis)
    except (RedisError, OSError) as exc:
        logging.getLogger(__name__).warning("bench cache: Redis rows skipped (%s)", exc)
    return results
