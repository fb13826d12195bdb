"""``ads-infra bench cache``: CacheManager, as shipped, against raw redis-py, a raw LRU and peers.

Every contender does the same work in the same run: an ad-sized JSON object
(~700 bytes), serialized with orjson, written with a 300 s TTL and read back,
by 50 concurrent tasks over a 50-connection pool. aiocache is given an
orjson serializer and cashews stores the orjson bytes as-is
(``pickle_type=null``), so the peers are compared on their cache layer, not
on stdlib json. Rounds are interleaved and each side's median round counts.

Redis rows, two baselines:

- the manager as shipped (auto-pipelining on: concurrent calls in one loop
  iteration share one round trip) against raw redis-py plus
  :class:`Batcher`, the few lines a careful user writes to get the same
  batching; raw redis-py without it, aiocache and cashews are peers;
- the manager with ``auto_pipeline: false`` (one round trip per call)
  against raw redis-py, one round trip per call.

Memory rows: the manager's memory backend against the same work written by
hand in the fewest lines: the C LRU (lru-dict) of (expiry, exact bytes) the
backend uses, bounded by ``max_size``, with the expiry and the NaN refusal.
A dict without expiry or bound does less than the seed asks of a memory
cache (``default_ttl``, ``max_size``): it is a peer, so the cost of those
features stays in view.

Growth rows: the bytes the memory cache holds per entry (tracemalloc, against
the payload's own size), and, in a full run only, invalidating one user's 100
keys (``repo:u42:*``) among 1,000,000 keys written through the manager.

Redis is ADS_BENCH_REDIS_URL, else ADS_TEST_REDIS_URL, else
redis://127.0.0.1:6379/15; every key lives under a fresh namespace that is
deleted (SCAN + UNLINK) at the end.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from lru import LRU

from ads_infra.cache import CacheConfig, CacheManager, CacheType
from benchmarks.report import Measurement, Op, compare, row

AREA = "cache"
CONCURRENCY = 50
POOL_SIZE = 50
TTL = 300
KEYS = 1000
SETUP = (
    f"memory and Redis (ADS_BENCH_REDIS_URL, default db 15), {CONCURRENCY} tasks, "
    f"pool {POOL_SIZE}; CacheConfig defaults but Redis URL, namespace and pool"
)
# What the issue asks.
BATCHED_TARGET = 1.0  # shipped manager / raw redis-py with a batcher
DIRECT_TARGET = 0.95  # auto_pipeline off / raw redis-py
BYTES_TARGET = 2.0  # memory bytes per entry / payload bytes
# The project's own (the issue sets no speed target for the memory cache): as
# the database rows' against raw asyncpg doing the same statements.
MEMORY_TARGET = 0.8  # memory get/set / the same work by hand on lru-dict
MEMORY_BASELINE = "the same work by hand (lru-dict, expiry, NaN search)"
INVALIDATE_LIMIT_MS = 50.0
INVALIDATE_USERS = 10_000  # x 100 keys each: the 1M-key keyspace
KEYS_PER_USER = 100

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
PAYLOAD = len(orjson.dumps(AD))

log = logging.getLogger(__name__)


def _redis_url() -> str:
    return (
        os.environ.get("ADS_BENCH_REDIS_URL")
        or os.environ.get("ADS_TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/15"
    )


def _key_cycle(prefix: str) -> Callable[[], str]:
    return itertools.cycle([f"{prefix}ad:{i}" for i in range(KEYS)]).__next__


class Batcher:
    """Raw redis-py plus the least a careful user writes to batch concurrent commands.

    Every command issued in one event-loop iteration goes out in one
    non-transactional pipeline (one round trip); each caller awaits its own
    reply. This is the baseline auto-pipelining has to beat, not one round
    trip per call.
    """

    def __init__(self, client: Any, batch_timeout: float | None = None) -> None:
        """``batch_timeout``: one deadline per batch, for a client built without socket_timeout."""
        self._client = client
        self._batch_timeout = batch_timeout
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((args, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for args, _ in batch:
            pipe.execute_command(*args)
        try:
            async with asyncio.timeout(self._batch_timeout):
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            replies = [exc] * len(batch)
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


# --- memory -------------------------------------------------------------------------


async def _bench_memory(operations: int, rounds: int) -> list[Measurement]:
    manager = CacheManager(CacheConfig(max_size=KEYS * 2, default_ttl=TTL))
    compact: dict[str, bytes] = {}
    plain: dict[str, bytes] = {}
    dumps, loads, join = orjson.dumps, orjson.loads, b"".join

    # A peer: a dict of serialized values within the bytes-per-entry bound, with no
    # expiry and no size bound. orjson hands back its ~8 KB output buffer (see the
    # bytes row), so a dict keeping it holds ~12x the payload; the exactly sized
    # copy is what any cache that must stay bounded pays (as ours does).
    async def dict_set(key: str, value: Any) -> None:
        compact[key] = join((dumps(value), b""))

    async def dict_get(key: str) -> Any:
        data = compact.get(key)
        return None if data is None else loads(data)

    # A peer: the dict of orjson's own buffers, fastest and unbounded.
    async def plain_set(key: str, value: Any) -> None:
        plain[key] = dumps(value)

    async def plain_get(key: str) -> Any:
        data = plain.get(key)
        return None if data is None else loads(data)

    # The baseline: what the manager's memory backend does, written by hand in the
    # fewest lines: the same C LRU of (expiry, exact bytes), the same NaN
    # search, a counter. The gap to it is our code's; the dicts show the features'.
    lru: LRU[str, tuple[float, bytes]] = LRU(KEYS * 2)
    counts, clock = [0, 0], time.monotonic

    async def lru_set(key: str, value: Any) -> None:
        data = dumps(value)
        if data.rfind(b"null") >= 0:
            raise AssertionError("the bench's value holds no null")
        lru[key] = (clock() + TTL, join((data, b"")))
        counts[0] += 1

    async def lru_get(key: str) -> Any:
        item = lru.get(key)
        if item is None or item[0] <= clock():
            return None
        counts[1] += 1
        return loads(item[1])

    ours_key, dict_key = _key_cycle(""), _key_cycle("bench:")
    plain_key, lru_key = _key_cycle("plain:"), _key_cycle("lru:")
    sets = await compare(
        {
            "ours": lambda: manager.set(ours_key(), AD, TTL),
            "raw": lambda: dict_set(dict_key(), AD),
            "plain": lambda: plain_set(plain_key(), AD),
            "lru": lambda: lru_set(lru_key(), AD),
        },
        operations=operations, rounds=rounds, concurrency=CONCURRENCY, latency=False,
    )  # fmt: skip
    gets = await compare(
        {
            "ours": lambda: manager.get(ours_key()),
            "raw": lambda: dict_get(dict_key()),
            "plain": lambda: plain_get(plain_key()),
            "lru": lambda: lru_get(lru_key()),
        },
        operations=operations, rounds=rounds, concurrency=CONCURRENCY, latency=False,
    )  # fmt: skip
    assert await manager.get("ad:1") == AD
    notes = {
        "set": f"~{PAYLOAD} B orjson payload; both sides refuse NaN and infinities "
        "(orjson would write them as null), keep an expiry and an LRU order bounded by "
        "max_size, and count; the dicts, doing none of it, show what that costs",
        "get": f"~{PAYLOAD} B orjson payload; both sides check the expiry, keep the LRU "
        "order and count",
    }
    return [
        row(
            AREA, f"memory {name}", result["ours"], MEMORY_BASELINE, result["lru"],
            peers={
                "dict of exactly sized orjson bytes (no expiry, no bound)": result["raw"],
                "dict of orjson's own buffers": result["plain"],
            },
            concurrency=CONCURRENCY, target=MEMORY_TARGET, note=notes[name],
        )
        for name, result in (("set", sets), ("get", gets))
    ]  # fmt: skip


async def _held_bytes(fill: Callable[[], Awaitable[Any]]) -> int:
    """Bytes still allocated (tracemalloc) after ``await fill()``, with what it returns kept."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = await fill()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


async def _bench_memory_bytes(entries: int) -> Measurement:
    """Bytes per entry the memory cache holds for the ~700-byte ad, against the payload.

    Each value is built, stored and dropped by the caller, as a request
    would: whatever the cache keeps of it (a copy, a buffer, a reference to
    the caller's object) is counted.
    """
    manager = CacheManager(CacheConfig(max_size=entries, default_ttl=TTL))

    async def fill_ours() -> Any:
        for i in range(entries):
            await manager.set(f"ad:{i}", dict(AD, id=i), TTL)
        return manager

    async def fill_dict() -> Any:
        return {f"ad:{i}": orjson.dumps(dict(AD, id=i)) for i in range(entries)}

    ours = await _held_bytes(fill_ours) / entries
    plain = await _held_bytes(fill_dict) / entries
    assert await manager.get("ad:7") == dict(AD, id=7)
    await manager.close()
    return Measurement(
        AREA, f"memory bytes per entry ({entries:,} entries)", ours, "payload (orjson bytes)",
        float(PAYLOAD), unit="B", higher_is_better=False, target=BYTES_TARGET,
        note=f"tracemalloc; a dict of orjson bytes holds {plain:,.0f} B per entry",
    )  # fmt: skip


# --- redis --------------------------------------------------------------------------


class _OrjsonSerializer:
    """aiocache serializer with orjson, so aiocache does the same work as the others."""

    DEFAULT_ENCODING = None
    encoding = None

    def dumps(self, value: Any) -> bytes:
        return orjson.dumps(value)

    def loads(self, value: bytes | None) -> Any:
        return None if value is None else orjson.loads(value)


def _manager(url: str, namespace: str, **overrides: Any) -> CacheManager:
    return CacheManager(
        CacheConfig(
            cache_type=CacheType.REDIS,
            redis_url=url,
            namespace=namespace,
            redis_max_connections=POOL_SIZE,
            **overrides,
        )
    )


async def _unlink_namespace(raw: Any, namespace: str) -> None:
    """Delete every key under ``namespace:`` (SCAN + UNLINK), whatever wrote it."""
    batch: list[bytes] = []
    async for key in raw.scan_iter(match=f"{namespace}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            await raw.unlink(*batch)
            batch.clear()
    if batch:
        await raw.unlink(*batch)


async def _bench_redis(url: str, operations: int, rounds: int) -> list[Measurement]:
    from aiocache import RedisCache
    from cashews import Cache
    from redis.asyncio import BlockingConnectionPool, Redis

    namespace = f"bench_{uuid.uuid4().hex[:8]}"
    shipped = _manager(url, namespace, default_ttl=TTL)
    direct = _manager(url, namespace, default_ttl=TTL, auto_pipeline=False)
    raw = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE))
    batched = Batcher(
        Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE))
    )
    # The same batcher with the shipped manager's own trick: connections without
    # redis-py's per-read timer (its default socket_timeout is 5 s), one deadline
    # per batch instead.
    deadline = Batcher(
        Redis.from_pool(
            BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE, socket_timeout=None)
        ),
        batch_timeout=CacheConfig().socket_timeout,
    )
    parts = urlsplit(url)
    aio = RedisCache(
        serializer=_OrjsonSerializer(),
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(parts.path.strip("/") or 0),
        pool_max_size=POOL_SIZE,
        namespace=f"{namespace}:aiocache",
    )
    cashews = Cache()
    cashews.setup(url, pickle_type="null", max_connections=POOL_SIZE, suppress=False)
    dumps, loads = orjson.dumps, orjson.loads

    async def raw_get(key: str) -> Any:
        data = await raw.get(key)
        return None if data is None else loads(data)

    async def batched_get(key: str) -> Any:
        data = await batched.execute("GET", key)
        return None if data is None else loads(data)

    async def deadline_get(key: str) -> Any:
        data = await deadline.execute("GET", key)
        return None if data is None else loads(data)

    async def cashews_get(key: str) -> Any:
        data = await cashews.get(key)
        return None if data is None else loads(data)

    # The managers add the namespace themselves, and aiocache its own.
    k = {name: _key_cycle(f"{name}:") for name in ("ours", "direct")}
    k.update(
        {
            name: _key_cycle(f"{namespace}:{name}:")
            for name in ("raw", "batched", "deadline", "cashews")
        }
    )
    k["aiocache"] = _key_cycle("")
    sets: dict[str, Op] = {
        "ours": lambda: shipped.set(k["ours"](), AD, TTL),
        "direct": lambda: direct.set(k["direct"](), AD, TTL),
        "raw": lambda: raw.set(k["raw"](), dumps(AD), ex=TTL),
        "batched": lambda: batched.execute("SET", k["batched"](), dumps(AD), "EX", TTL),
        "deadline": lambda: deadline.execute("SET", k["deadline"](), dumps(AD), "EX", TTL),
        "aiocache": lambda: aio.set(k["aiocache"](), AD, ttl=TTL),
        "cashews": lambda: cashews.set(k["cashews"](), dumps(AD), expire=TTL),
    }
    gets: dict[str, Op] = {
        "ours": lambda: shipped.get(k["ours"]()),
        "direct": lambda: direct.get(k["direct"]()),
        "raw": lambda: raw_get(k["raw"]()),
        "batched": lambda: batched_get(k["batched"]()),
        "deadline": lambda: deadline_get(k["deadline"]()),
        "aiocache": lambda: aio.get(k["aiocache"]()),
        "cashews": lambda: cashews_get(k["cashews"]()),
    }
    try:
        await shipped.start()
        await direct.start()
        await raw.ping()
        set_samples = await compare(
            sets, operations=operations, rounds=rounds, concurrency=CONCURRENCY
        )
        get_samples = await compare(
            gets, operations=operations, rounds=rounds, concurrency=CONCURRENCY
        )
        for check in (
            shipped.get("ours:ad:1"),
            direct.get("direct:ad:1"),
            raw_get(f"{namespace}:raw:ad:1"),
            batched_get(f"{namespace}:batched:ad:1"),
            deadline_get(f"{namespace}:deadline:ad:1"),
            aio.get("ad:1"),
            cashews_get(f"{namespace}:cashews:ad:1"),
        ):
            assert await check == AD, "a contender did not store the payload"
    finally:
        await _unlink_namespace(raw, namespace)
        for manager in (shipped, direct):
            await manager.close()
        await raw.aclose()
        await batched._client.aclose()
        await deadline._client.aclose()
        await aio.close()
        await cashews.close()
    out = []
    for name, samples in (("set", set_samples), ("get", get_samples)):
        peers = {
            "batcher, one deadline per batch": samples["deadline"],
            "raw redis-py": samples["raw"],
            "aiocache": samples["aiocache"],
            "cashews": samples["cashews"],
        }
        out.append(
            row(
                AREA, f"redis {name}", samples["ours"], "raw redis-py + batcher",
                samples["batched"], peers=peers,
                concurrency=CONCURRENCY, target=BATCHED_TARGET,
                note="shipped: auto_pipeline on; the batcher sends what one loop iteration "
                "issued as one pipeline, on redis-py's defaults (a timer per reply read); "
                "the peer with one deadline per batch does what the manager does",
            )
        )  # fmt: skip
        out.append(
            row(
                AREA, f"redis {name} (auto_pipeline off)", samples["direct"], "raw redis-py",
                samples["raw"], peers={p: samples[p] for p in ("aiocache", "cashews")},
                concurrency=CONCURRENCY, target=DIRECT_TARGET,
                note="one round trip per call on every side",
            )
        )  # fmt: skip
    return out


# --- invalidating one user's keys among 1M --------------------------------------------------


async def _bench_invalidation(url: str) -> Measurement:
    """``invalidate_tags("user:<N>")`` with 1,000,000 keys under the namespace.

    The keyspace is written through the manager's public ``set_many`` with a
    tag per user (so the tags' sets are part of what is kept and measured),
    10,000 users of 100 keys. Several users are invalidated in turn; the
    median counts. The floor is raw redis-py UNLINK of the same 100 keys by
    name; ``invalidate_pattern`` (a SCAN of the whole keyspace) and a raw SCAN
    MATCH + UNLINK are shown in the note.
    """
    from redis.asyncio import Redis

    namespace = f"bench_inv_{uuid.uuid4().hex[:8]}"
    manager = _manager(url, namespace, default_ttl=3600)
    raw = Redis.from_url(url)
    value = {"id": 1, "status": "active"}
    ours_ms: list[float] = []
    floor_ms: list[float] = []
    scan_ms = pattern_ms = float("nan")
    try:
        await manager.start()
        started = time.perf_counter()
        semaphore = asyncio.Semaphore(8)

        async def write_users(first: int) -> None:
            async with semaphore:
                for user in range(first, min(first + 10, INVALIDATE_USERS)):
                    await manager.set_many(
                        {f"repo:u{user}:ad:{i}": value for i in range(KEYS_PER_USER)},
                        tags=[f"user:{user}"],
                    )

        await asyncio.gather(*(write_users(u) for u in range(0, INVALIDATE_USERS, 10)))
        populate_s = time.perf_counter() - started
        total = await raw.dbsize()
        for user in (42, 4242, 777, 9001, 1234):
            started = time.perf_counter()
            removed = await manager.invalidate_tags(f"user:{user}")
            ours_ms.append((time.perf_counter() - started) * 1000)
            assert removed == KEYS_PER_USER, f"invalidated {removed} keys, not {KEYS_PER_USER}"
            assert await manager.get(f"repo:u{user}:ad:0") is None
        for user in (43, 4243, 778, 9002, 1235):
            names = [f"{namespace}:repo:u{user}:ad:{i}" for i in range(KEYS_PER_USER)]
            started = time.perf_counter()
            assert await raw.unlink(*names) == KEYS_PER_USER
            floor_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        assert await manager.invalidate_pattern("repo:u45:*") == KEYS_PER_USER
        pattern_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        found = [key async for key in raw.scan_iter(match=f"{namespace}:repo:u44:*", count=1000)]
        await raw.unlink(*found)
        scan_ms = (time.perf_counter() - started) * 1000
    finally:
        await _unlink_namespace(raw, namespace)
        await manager.close()
        await raw.aclose()
    return Measurement(
        AREA, f"invalidate one user's {KEYS_PER_USER} keys among 1M", statistics.median(ours_ms),
        f"UNLINK of the {KEYS_PER_USER} keys by name", statistics.median(floor_ms), unit="ms",
        higher_is_better=False, limit=INVALIDATE_LIMIT_MS, rounds=len(ours_ms),
        note=f"{total:,} keys in the db (written through set_many in {populate_s:.0f} s); "
        f"invalidate_pattern('repo:u45:*'): {pattern_ms:,.0f} ms, "
        f"raw SCAN MATCH + UNLINK of such a pattern: {scan_ms:,.0f} ms",
    )  # fmt: skip


async def run(*, quick: bool) -> list[Measurement]:
    """Memory and Redis figures; Redis rows are left out (with a warning) when it is down."""
    from redis.exceptions import RedisError

    # (operations per round, rounds)
    memory, redis = ((8_000, 5), (1_000, 5)) if quick else ((20_000, 15), (4_000, 9))
    results = await _bench_memory(*memory)
    results.append(await _bench_memory_bytes(2_000 if quick else 20_000))
    url = _redis_url()
    try:
        results += await _bench_redis(url, *redis)
        if not quick:
            results.append(await _bench_invalidation(url))
    except (RedisError, OSError) as exc:
        log.warning("bench cache: Redis rows skipped (%s)", exc)
    return results
