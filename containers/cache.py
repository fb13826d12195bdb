"""Cache sub-container: settings -> strategy (Selector on cache_type) -> CacheManager."""

from dependency_injector import containers, providers

from ads_infra.config import CacheConfig


class CacheContainer(containers.DeclarativeContainer):
    config = providers.Configuration()

    settings = providers.Singleton(CacheConfig.from_dict, config)
