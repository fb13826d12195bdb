"""Tags on the memory backend: grouped invalidation without scanning the store."""

from __future__ import annotations

import pytest

from ads_infra.cache import CacheConfig, CacheManager, MemoryCacheStrategy


async def test_invalidating_a_tag_deletes_its_keys_and_nothing_else() -> None:
    cache = CacheManager()
    await cache.set("ad:1", 1, tags=["user:1"])
    await cache.set_many({"ad:2": 2, "ad:3": 3}, tags=["user:1", "campaign:9"])
    await cache.set("ad:4", 4, tags=["user:2"])
    await cache.set("plain", 5)
    assert await cache.get_or_set("ad:5", lambda: 6, tags=["user:1"]) == 6

    assert await cache.invalidate_tags("user:1") == 4
    assert await cache.get_many(["ad:1", "ad:2", "ad:3", "ad:5"]) == {}
    assert await cache.get("ad:4") == 4 and await cache.get("plain") == 5
    assert await cache.invalidate_tags("user:1", "campaign:9") == 0  # both already gone
    assert (await cache.get_stats())["deletes"] == 4


async def test_a_key_stored_again_without_the_tag_is_still_dropped_by_it() -> None:
    """The tag records the key, not one version: over-invalidation is safe, a stale hit is not."""
    cache = CacheManager()
    await cache.set("ad:1", 1, tags=["user:1"])
    await cache.set("ad:1", 2)
    assert await cache.invalidate_tags("user:1") == 1
    assert await cache.get("ad:1") is None


async def test_tags_must_be_an_iterable_of_non_empty_strings() -> None:
    cache = CacheManager()
    with pytest.raises(TypeError, match=r"tags=\['user:1'\]"):
        await cache.set("k", 1, tags="user:1")
    with pytest.raises(TypeError, match="a tag must be a string"):
        await cache.set_many({"k": 1}, tags=[7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="1 to 1024 characters"):
        await cache.invalidate_tags("")
    assert await cache.get("k") is None  # nothing half-written


async def test_the_tag_index_stays_bounded_under_churn() -> None:
    """Evicted keys leave the index when it grows past a few times max_size."""
    strategy = MemoryCacheStrategy(CacheConfig(max_size=100))
    cache = CacheManager(strategy=strategy)
    for i in range(10_000):
        await cache.set(f"k{i}", i, tags=[f"t{i % 50}"])
    assert len(strategy) == 100
    assert strategy._tag_members <= 2 * 100 + 1024
    removed = sum([await cache.invalidate_tags(f"t{t}") for t in range(50)])
    assert removed == 100 and len(strategy) == 0


async def test_purge_forgets_tags() -> None:
    strategy = MemoryCacheStrategy()
    cache = CacheManager(strategy=strategy)
    await cache.set("k", 1, tags=["t"])
    strategy.purge()
    await cache.set("k", 2)
    assert await cache.invalidate_tags("t") == 0
    assert await cache.get("k") == 2


async def test_the_tag_index_is_not_pruned_on_every_write_when_keys_carry_several_tags() -> None:
    """Three tags a key: the live members alone pass twice max_size, and each prune
    walks the whole index; it must run once in a while, not on every tagged write."""
    strategy = MemoryCacheStrategy(CacheConfig(max_size=1000))
    cache = CacheManager(strategy=strategy)
    prunes = 0
    prune = strategy._prune_tags

    def counted() -> None:
        nonlocal prunes
        prunes += 1
        prune()

    strategy._prune_tags = counted  # type: ignore[method-assign]
    for i in range(5000):
        await cache.set(f"k{i}", i, tags=[f"user:{i}", f"campaign:{i % 7}", f"kind:{i % 3}"])
    assert prunes < 50
    assert strategy._tag_members <= 4 * 3 * 1000 + 1024  # still bounded
    removed = sum([await cache.invalidate_tags(f"kind:{k}") for k in range(3)])
    assert removed == 1000 and len(strategy) == 0
