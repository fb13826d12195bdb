"""Caching for ads-infra: memory, Redis and Redis Cluster behind one CacheManager.

>>> from ads_infra.cache import CacheManager, CacheConfig, CacheType
>>> cache = CacheManager(CacheConfig(default_ttl=300, max_size=1000, cache_type=CacheType.REDIS))
>>> await cache.set("key", {"headline": "Hi"}, ttl=600)

See docs/cache.md for configuration, fallback, two-level mode and benchmarks.
"""

from ads_infra.cache.codec import Codec
from ads_infra.cache.manager import CacheManager, CacheStats, build_strategy
from ads_infra.cache.strategies import (
    CacheStrategy,
    MemoryCacheStrategy,
    RedisCacheStrategy,
    RedisClusterCacheStrategy,
)
from ads_infra.core.settings import CacheConfig, CacheType

__all__ = [
    "CacheConfig",
    "CacheManager",
    "CacheStats",
    "CacheStrategy",
    "CacheType",
    "Codec",
    "MemoryCacheStrategy",
    "RedisCacheStrategy",
    "RedisClusterCacheStrategy",
    "build_strategy",
]
