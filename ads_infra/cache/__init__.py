"""Caching for ads-infra: memory, Redis and Redis Cluster behind one CacheManager.

>>> from ads_infra.cache import CacheManager, CacheConfig, CacheType
>>> cache = CacheManager(CacheConfig(default_ttl=300, max_size=1000, cache_type=CacheType.REDIS))
>>> await cache.set("key", {"headline": "Hi"}, ttl=600)

Modules: ``base`` (the CacheStrategy interface, TTL rules), ``memory``,
``redis`` and ``cluster`` (the backends), ``backends`` (which ``cache_type``
selects which backend), ``glob`` (Redis glob matching), ``codec`` (payload
formats), ``manager`` (CacheManager) and ``stats`` (its counters). See docs/cache.md for
configuration, fallback, two-level mode and benchmarks.
"""

from ads_infra.cache.backends import CACHE_BACKENDS, build_strategy, cache_backends
from ads_infra.cache.base import MAX_TTL, CacheStrategy, expiry_seconds
from ads_infra.cache.cluster import RedisClusterCacheStrategy
from ads_infra.cache.codec import Codec
from ads_infra.cache.glob import compile_glob, glob_escape
from ads_infra.cache.manager import CacheManager
from ads_infra.cache.memory import MemoryCacheStrategy
from ads_infra.cache.redis import AutoPipeline, RedisCacheStrategy
from ads_infra.cache.stats import CacheStats
from ads_infra.core.settings import CacheConfig, CacheType

__all__ = [
    "CACHE_BACKENDS",
    "MAX_TTL",
    "AutoPipeline",
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
    "cache_backends",
    "compile_glob",
    "expiry_seconds",
    "glob_escape",
]
