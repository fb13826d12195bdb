"""Which strategy class each ``cache_type`` selects: the one place a backend is chosen.

:data:`CACHE_BACKENDS` holds the built-in backends; :func:`cache_backends`
adds one builder per installed plugin (entry point group
``ads_infra.cache_strategies``, docs/plugins.md). The container's Selector is
built from :func:`cache_backends`, and ``CacheManager()`` without a strategy
uses :func:`build_strategy`, so the two can never disagree about what
``cache_type: redis`` or a plugin's name means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from ads_infra.cache.base import CacheStrategy
from ads_infra.cache.cluster import RedisClusterCacheStrategy
from ads_infra.cache.memory import MemoryCacheStrategy
from ads_infra.cache.redis import RedisCacheStrategy
from ads_infra.core import plugins
from ads_infra.core.settings import CacheConfig, CacheType

__all__ = ["CACHE_BACKENDS", "build_plugin_strategy", "build_strategy", "cache_backends"]

_OPTIONS = "cache.options"

CACHE_BACKENDS: Mapping[CacheType, type[CacheStrategy]] = MappingProxyType(
    {
        CacheType.MEMORY: MemoryCacheStrategy,
        CacheType.REDIS: RedisCacheStrategy,
        CacheType.REDIS_CLUSTER: RedisClusterCacheStrategy,
    }
)


def build_plugin_strategy(name: str, config: CacheConfig) -> CacheStrategy:
    """The installed plugin ``name``'s strategy, built on ``config`` and its ``options``."""
    strategy: CacheStrategy = plugins.build_backend(
        plugins.CACHE_GROUP, name, CacheStrategy, _OPTIONS, config
    )
    return strategy


def cache_backends() -> dict[str, Callable[[CacheConfig], CacheStrategy]]:
    """Every name ``cache_type`` accepts and what builds it: built-ins, then plugins."""
    return plugins.backends_with_plugins(
        CACHE_BACKENDS, plugins.CACHE_GROUP, CacheStrategy, _OPTIONS
    )


def build_strategy(config: CacheConfig) -> CacheStrategy:
    """The strategy ``config.cache_type`` selects, built on ``config``."""
    if isinstance(config.cache_type, CacheType):
        return CACHE_BACKENDS[config.cache_type](config)
    return build_plugin_strategy(config.cache_type, config)
