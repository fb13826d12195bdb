"""Cache sub-container: settings -> strategy (Selector on cache_type) -> CacheManager."""

from dependency_injector import containers, providers

from ads_infra.cache import (
    CacheManager,
    MemoryCacheStrategy,
    RedisCacheStrategy,
    RedisClusterCacheStrategy,
)
from ads_infra.core.lifecycle import started
from ads_infra.core.settings import CacheConfig


class CacheContainer(containers.DeclarativeContainer):
    config = providers.Configuration()

    settings = providers.Singleton(CacheConfig.from_dict, config)
    strategy = providers.Selector(
        config.cache_type,
        memory=providers.Singleton(MemoryCacheStrategy, settings),
        redis=providers.Singleton(RedisCacheStrategy, settings),
        redis_cluster=providers.Singleton(RedisClusterCacheStrategy, settings),
    )
    manager = providers.Singleton(CacheManager, config=settings, strategy=strategy)
    lifecycle = providers.Resource(started, manager)
