"""Which strategy class each ``cache_type`` selects: the one place a backend is chosen.

:data:`CACHE_BACKENDS` holds the built-in backends; :func:`cache_backends`
adds one builder per installed plugin (entry point group
``ads_infra.cache_strategies``, docs/plugins.md). The container's Selector is
built from :func:`cache_backends`, and ``CacheManager()`` without a strategy
uses :func:`build_strategy`, so the two can never disagree about what
``cache_type: redis`` or a plugin's name means.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType

from ads_infra.cache.base import CacheStrategy
from ads_infra.cache.cluster import RedisClusterCacheStrategy
from ads_infra.cache.memory import MemoryCacheStrategy
from ads_infra.cache.redis import RedisCacheStrategy
from ads_infra.core import plugins
from ads_infra.core.settings import CacheConfig, CacheType

__all__ = ["CACHE_BACKENDS", "build_plugin_strategy", "build_strategy", "cache_backends"]

CACHE_BACKENDS: Mapping[CacheType, type[CacheStrategy]] = MappingProxyType(
    {
        CacheType.MEMORY: MemoryCacheStrategy,
        CacheType.REDIS: RedisCacheStrategy,
        CacheType.REDIS_CLUSTER: RedisClusterCacheStrategy,
    }
)


def build_plugin_strategy(name: str, config: CacheConfig) -> CacheStrategy:
    """The installed plugin ``name``'s strategy, built on ``config`` and its ``options``.

    A plugin class is called as ``cls(config)``, or ``cls(config, options)``
    when it declares an ``options_type``.
    """
    cls: type[CacheStrategy] = plugins.load_class(plugins.CACHE_GROUP, name, CacheStrategy)
    return plugins.instantiate(
        cls, plugins.CACHE_GROUP, name, config, options=config.options, key="cache.options"
    )


def cache_backends() -> dict[str, Callable[[CacheConfig], CacheStrategy]]:
    """Every name ``cache_type`` accepts and what builds it: built-ins, then plugins.

    A plugin is imported only when its builder is called; a plugin named like a
    built-in backend is shadowed by it.
    """
    table: dict[str, Callable[[CacheConfig], CacheStrategy]] = {
        str(name): cls for name, cls in CACHE_BACKENDS.items()
    }
    for name in plugins.names(plugins.CACHE_GROUP):
        table.setdefault(name, functools.partial(build_plugin_strategy, name))
    return table


def build_strategy(config: CacheConfig) -> CacheStrategy:
    """The strategy ``config.cache_type`` selects, built on ``config``."""
    if isinstance(config.cache_type, CacheType):
        return CACHE_BACKENDS[config.cache_type](config)
    return build_plugin_strategy(config.cache_type, config)
