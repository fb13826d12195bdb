"""Cache sub-container: settings -> strategy (Selector on cache_type) -> CacheManager.

The Selector's choices come from ``cache_backends()`` (the built-in backends
and the installed plugins), the table ``CacheManager()`` builds its own
default strategy from.
"""

from dependency_injector import containers, providers

from ads_infra.cache import CacheManager, cache_backends
from ads_infra.containers.backends import one_per_backend
from ads_infra.core.lifecycle import started_after
from ads_infra.core.settings import CacheConfig


class CacheContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=CacheConfig)
    fleet: providers.Dependency[object | None] = providers.Dependency(default=None)
    fleet_lifecycle: providers.Dependency[object | None] = providers.Dependency(default=None)

    strategy = providers.Selector(
        settings.provided.cache_type, **one_per_backend(cache_backends(), config=settings)
    )
    manager = providers.Singleton(CacheManager, config=settings, strategy=strategy, fleet=fleet)
    lifecycle = providers.Resource(started_after, manager, fleet_lifecycle)
