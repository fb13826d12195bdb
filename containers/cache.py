"""Cache sub-container: settings -> strategy (Selector on cache_type) -> CacheManager.

The Selector's choices come from ``CACHE_BACKENDS``, the mapping
``CacheManager()`` builds its own default strategy from.
"""

from dependency_injector import containers, providers

from ads_infra.cache import CACHE_BACKENDS, CacheManager, CacheStrategy
from ads_infra.config import CacheConfig
from ads_infra.lifecycle import started


def _backend_providers(
    settings: providers.Provider[CacheConfig],
) -> dict[str, providers.Provider[CacheStrategy]]:
    # A function, not a comprehension in the class body: class-level names
    # such as ``settings`` are not visible inside one.
    return {
        cache_type.value: providers.Singleton(strategy, settings)
        for cache_type, strategy in CACHE_BACKENDS.items()
    }


class CacheContainer(containers.DeclarativeContainer):
    config = providers.Configuration()

    settings = providers.Singleton(CacheConfig.from_dict, config)
    strategy = providers.Selector(config.cache_type, **_backend_providers(settings))
    manager = providers.Singleton(CacheManager, config=settings, strategy=strategy)
    lifecycle = providers.Resource(started, manager)
