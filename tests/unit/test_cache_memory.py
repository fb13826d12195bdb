"""CacheManager and MemoryCacheStrategy on the memory backend (no I/O)."""

from __future__ import annotations

import asyncio
import gc
import math
import weakref
from typing import Any

import pytest

from ads_infra.cache import CacheConfig, CacheManager, MemoryCacheStrategy
from ads_infra.cache.glob import compile_glob
from ads_infra.errors import CacheSerializationError


async def test_seed_unit_test() -> None:
    cache_manager = CacheManager()

    await cache_manager.set("test_key", "test_value")
    result = await cache_manager.get("test_key")
    assert result == "test_value"


async def test_bare_manager_is_memory_on_defaults() -> None:
    manager = CacheManager()
    assert manager.backend == "memory" and manager.config.default_ttl == 300
    await manager.start()
    health = await manager.health_check()
    assert health.healthy and health.component == "cache" and health.backend == "memory"
    await manager.close()


async def test_get_stats_counts_and_rates() -> None:
    manager = CacheManager()
    await manager.set("a", 1)
    assert await manager.get("a") == 1
    assert await manager.get("missing") is None
    assert await manager.get("missing", "dflt") == "dflt"
    await manager.delete("a")
    stats = await manager.get_stats()
    assert (stats["hits"], stats["misses"], stats["sets"], stats["deletes"]) == (1, 2, 1, 1)
    assert stats["hit_rate"] == pytest.approx(1 / 3)
    assert f"{stats['hit_rate']:.2%}" == "33.33%"
    for name in ("errors", "fallbacks", "evictions", "mean_latency_ms"):
        assert stats[name] == 0
    assert manager.stats.hits == 1  # plain counters for Prometheus


async def test_lru_eviction_at_max_size() -> None:
    manager = CacheManager(CacheConfig(max_size=3))
    for key in ("a", "b", "c"):
        await manager.set(key, key)
    assert await manager.get("a") == "a"  # a is now the most recently used
    await manager.set("d", "d")  # evicts b, the least recently used
    assert await manager.get("b") is None
    assert [await manager.get(k) for k in ("a", "c", "d")] == ["a", "c", "d"]
    stats = await manager.get_stats()
    assert stats["evictions"] == 1 and stats["local_entries"] == 3


async def test_overwriting_refreshes_recency_without_growing() -> None:
    manager = CacheManager(CacheConfig(max_size=2))
    await manager.set("a", 1)
    await manager.set("b", 2)
    await manager.set("a", 3)
    await manager.set("c", 4)  # evicts b
    assert await manager.get_many(["a", "b", "c"]) == {"a": 3, "c": 4}


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _manager_on(clock: FakeClock, **config: Any) -> CacheManager:
    return CacheManager(strategy=MemoryCacheStrategy(CacheConfig(**config), clock=clock))


async def test_per_key_ttl() -> None:
    clock = FakeClock()
    manager = _manager_on(clock, default_ttl=300)
    await manager.set("short", 1, ttl=0.05)
    await manager.set("default", 2)
    await manager.set("forever", 3, ttl=0)
    clock.advance(0.1)
    assert await manager.get("short") is None
    assert not await manager.exists("short")
    assert await manager.get("default") == 2 and await manager.get("forever") == 3


async def test_entries_expire_at_their_ttl_on_every_path() -> None:
    clock = FakeClock()
    strategy = MemoryCacheStrategy(CacheConfig(default_ttl=10), clock=clock)
    manager = CacheManager(strategy=strategy)
    await manager.set("one", 1)
    await manager.set_many({"many": 2}, ttl=5)
    await manager.set("forever", 3, ttl=math.inf)
    clock.advance(4.999)
    assert await manager.get_many(["one", "many", "forever"]) == {"one": 1, "many": 2, "forever": 3}
    clock.advance(0.001)  # "many" reaches its expiry
    assert await manager.get("many") is None and await manager.get("one") == 1
    clock.advance(5)
    assert await manager.get_many(["one", "many"]) == {}
    clock.advance(10**9)
    assert await manager.get("forever") == 3
    assert strategy.expirations == 2
    assert (await manager.get_stats())["local_entries"] == 1


async def test_negative_ttl_is_refused() -> None:
    manager = CacheManager()
    with pytest.raises(ValueError, match="ttl must be >= 0"):
        await manager.set("k", 1, ttl=-1)
    with pytest.raises(ValueError, match="ttl must be >= 0"):
        await manager.set_many({"k": 1}, ttl=-5)
    with pytest.raises(ValueError, match="ttl must be >= 0"):
        await manager.set("k", 1, ttl=math.nan)  # would otherwise never be readable
    assert await manager.get("k") is None
    assert (await manager.get_stats())["sets"] == 0


async def test_churn_keeps_the_store_bounded_and_counts_evictions() -> None:
    manager = CacheManager(CacheConfig(max_size=100))
    for i in range(1_000):
        await manager.set(f"k{i}", i)
        if i % 10 == 0:
            assert await manager.get("k0") == 0  # kept hot: never evicted
    stats = await manager.get_stats()
    assert (stats["local_entries"], stats["evictions"], stats["sets"]) == (100, 900, 1_000)
    assert await manager.get("k0") == 0 and await manager.get("k999") == 999
    assert await manager.get("k1") is None


def test_a_dropped_store_is_freed() -> None:
    # The C LRU is invisible to the cycle collector: nothing in it may point back.
    strategy = MemoryCacheStrategy(CacheConfig(max_size=2))
    manager = CacheManager(strategy=strategy)
    refs = [weakref.ref(strategy), weakref.ref(manager)]
    del strategy, manager
    gc.collect()
    assert [ref() for ref in refs] == [None, None]


async def test_values_are_copies() -> None:
    manager = CacheManager()
    value = {"tags": ["a"]}
    await manager.set("k", value)
    value["tags"].append("mutated")
    got = await manager.get("k")
    got["tags"].append("mutated too")
    assert await manager.get("k") == {"tags": ["a"]}


async def test_unserializable_values_are_refused_in_memory_too() -> None:
    manager = CacheManager()
    with pytest.raises(CacheSerializationError, match="set"):
        await manager.set("k", {1, 2})
    assert not await manager.exists("k")


async def test_many_and_patterns() -> None:
    manager = CacheManager()
    await manager.set_many({"ad:1": 1, "ad:2": 2, "ad:10": 10, "campaign:1": "c", "ad?x": "q"})
    assert await manager.get_many(["ad:1", "ad:2", "nope"]) == {"ad:1": 1, "ad:2": 2}
    assert await manager.invalidate_pattern("ad:?") == 2  # ad:1, ad:2
    assert await manager.delete_pattern("ad:[0-9]*") == 1  # ad:10
    assert await manager.invalidate_pattern("ad\\?x") == 1  # escaped like Redis: literal ?
    assert await manager.exists("campaign:1")
    assert await manager.clear() == 1
    assert await manager.get_many(["campaign:1"]) == {}


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [("*", ["ad:1", "ad:22", "ab", "a*", "[x]"]), ("ad:?", ["ad:1"]), ("ad:*", ["ad:1", "ad:22"]),
     ("a[bd]*", ["ad:1", "ad:22", "ab"]), ("a[^d]", ["ab", "a*"]), ("ad:[0-9]", ["ad:1"]),
     ("a\\*", ["a*"]), ("\\[x\\]", ["[x]"]), ("[a-a]?", ["ab", "a*"])],
)  # fmt: skip
def test_glob_follows_redis_semantics(pattern: str, matches: list[str]) -> None:
    regex = compile_glob(pattern)
    keys = ["ad:1", "ad:22", "ab", "a*", "[x]"]
    assert [k for k in keys if regex.match(k.encode())] == matches


async def test_msgpack_and_pickle_serializers() -> None:
    for serializer, value in (("msgpack", {"a": [1, 2]}), ("pickle", {1: {"set"}})):
        manager = CacheManager(CacheConfig(serializer=serializer))
        await manager.set("k", value)
        assert await manager.get("k") == value
        assert await manager.get_many(["k"]) == {"k": value}


async def test_get_or_set_single_flight_100_callers() -> None:
    manager = CacheManager()
    calls = 0

    async def load() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return {"id": 1}

    results = await asyncio.gather(*(manager.get_or_set("cold", load, ttl=60) for _ in range(100)))
    assert calls == 1 and results == [{"id": 1}] * 100
    assert await manager.get("cold") == {"id": 1}


async def test_get_or_set_accepts_a_sync_factory_and_caches_none() -> None:
    manager = CacheManager()
    calls: list[int] = []

    def load() -> None:
        calls.append(1)

    assert await manager.get_or_set("nothing", load) is None
    assert await manager.get_or_set("nothing", load) is None
    assert calls == [1]


async def test_get_or_set_failure_reaches_every_waiter_and_is_not_cached() -> None:
    manager = CacheManager()
    calls = 0

    async def broken() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(
        *(manager.get_or_set("k", broken) for _ in range(10)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await manager.get_or_set("k", lambda: 5) == 5


async def test_cancelled_owner_lets_waiters_retry() -> None:
    manager = CacheManager()
    started = asyncio.Event()

    async def slow() -> int:
        started.set()
        await asyncio.sleep(10)
        return 1

    owner = asyncio.ensure_future(manager.get_or_set("k", slow))
    await started.wait()
    waiter = asyncio.ensure_future(manager.get_or_set("k", lambda: 2))
    await asyncio.sleep(0)
    owner.cancel()
    assert await waiter == 2
    with pytest.raises(asyncio.CancelledError):
        await owner


async def test_strategy_alone_offers_the_same_api() -> None:
    strategy = MemoryCacheStrategy(CacheConfig(max_size=10))
    await strategy.set("a", [1], ttl=30)
    await strategy.set_many({"b": 2, "c": 3})
    assert await strategy.get("a") == [1]
    assert await strategy.get("zz", "d") == "d"
    assert await strategy.get_many(["a", "b", "x"]) == {"a": [1], "b": 2}
    assert await strategy.exists("c")
    assert await strategy.delete("c") and not await strategy.delete("c")
    assert await strategy.delete_pattern("*") == 2
    assert await strategy.clear() == 0
    await strategy.ping()
    await strategy.close()


async def test_a_subclass_keeps_its_own_get_and_set() -> None:
    calls: list[str] = []

    class Traced(CacheManager):
        async def get(self, key: str, default: Any = None) -> Any:
            calls.append(f"get {key}")
            return await super().get(key, default)

        async def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
            calls.append(f"set {key}")
            return await super().set(key, value, ttl)

    manager = Traced()
    assert await manager.set("k", 1) and await manager.get("k") == 1
    assert await manager.get_or_set("j", lambda: 2) == 2
    assert calls == ["set k", "get k", "get j", "set j"]
    stats = await manager.get_stats()
    assert (stats["hits"], stats["misses"], stats["sets"]) == (1, 1, 2)


async def test_async_with_starts_and_closes() -> None:
    async with CacheManager() as manager:
        assert await manager.set("k", 1) and await manager.get("k") == 1


async def test_manager_uses_an_injected_strategy() -> None:
    strategy = MemoryCacheStrategy(CacheConfig(max_size=5))
    manager = CacheManager(config=None, strategy=strategy)
    assert manager.strategy is strategy and manager.config is strategy.config
    await manager.set("k", 1)
    assert await strategy.get("k") == 1


def test_namespace_metacharacters_are_escaped_for_scan() -> None:
    from ads_infra.cache.glob import glob_escape

    regex = compile_glob(glob_escape("ads[1]*?:") + "ad:*")
    assert regex.match(b"ads[1]*?:ad:7")
    assert not regex.match(b"ads1xy:ad:7") and not regex.match(b"ads[1]*?:campaign:1")


async def test_get_or_set_waiters_cancelled_with_the_owner_stay_cancelled() -> None:
    manager = CacheManager()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return "fresh"

    results = await asyncio.gather(
        *(asyncio.wait_for(manager.get_or_set("k", load), 0.05) for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, TimeoutError) for r in results), results
    assert calls == 1  # no waiter took over the cancelled flight


async def test_ttl_bounds() -> None:
    manager = CacheManager()
    await manager.set("forever", 1, ttl=math.inf)  # same as 0: no expiry
    await manager.set_many({"many": 1}, ttl=math.inf)
    assert await manager.get_many(["forever", "many"]) == {"forever": 1, "many": 1}
    with pytest.raises(ValueError, match="ttl must be <= 1,000,000,000 seconds"):
        await manager.set_many({"k": 1}, ttl=1e16)


async def test_entries_keep_a_copy_not_the_serializer_buffer() -> None:
    """An entry holds its own exactly sized bytes, never the object it was given.

    orjson's output sits in an over-allocated block; keeping a copy is what
    holds an entry near its payload's size (measured, not asserted here).
    """
    strategy = MemoryCacheStrategy(CacheConfig(max_size=10))
    data = b'{"a":"' + b"x" * 700 + b'"}'
    strategy.store("k", data, 0)
    kept = strategy.lookup("k")
    assert kept == data and kept is not data

    manager = CacheManager(CacheConfig(max_size=10))
    value = {"a": "x" * 700}
    assert await manager.set("k", value, 60)
    assert await manager.get("k") == value
