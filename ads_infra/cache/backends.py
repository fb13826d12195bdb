"""Which strategy class each ``cache_type`` selects: the one place a backend is chosen.

The container's Selector is built from :data:`CACHE_BACKENDS`, and
``CacheManager()`` without a strategy uses :func:`build_strategy`, so the two
can never disagree about what ``cache_type: redis`` means.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ads_infra.cache.base import CacheStrategy
from ads_infra.cache.cluster import RedisClusterCacheStrategy
from ads_infra.cache.memory import MemoryCacheStrategy
from ads_infra.cache.redis import RedisCacheStrategy
from ads_infra.core.settings import CacheConfig, CacheType

__all__ = ["CACHE_BACKENDS", "build_strategy"]

CACHE_BACKENDS: Mapping[CacheType, type[CacheStrategy]] = MappingProxyType(
    {
        CacheType.MEMORY: MemoryCacheStrategy,
        CacheType.REDIS: RedisCacheStrategy,
        CacheType.REDIS_CLUSTER: RedisClusterCacheStrategy,
    }
)


def build_strategy(config: CacheConfig) -> CacheStrategy:
    """The strategy ``config.cache_type`` selects, built on ``config``."""
    return CACHE_BACKENDS[config.cache_type](config)
