"""The application container: one validated Settings, one sub-container per component."""

from dependency_injector import containers, providers

from ads_infra.containers.cache import CacheContainer
from ads_infra.containers.coordination import CoordinationContainer
from ads_infra.containers.database import DatabaseContainer
from ads_infra.containers.discovery import DiscoveryContainer
from ads_infra.containers.domain import DomainContainer
from ads_infra.containers.repositories import RepositoriesContainer
from ads_infra.containers.services import ServicesContainer
from ads_infra.containers.storage import StorageContainer
from ads_infra.core.lifecycle import started, started_after
from ads_infra.core.loader import settings_for
from ads_infra.core.metrics import build_registry
from ads_infra.core.reloader import ConfigReloader
from ads_infra.discovery.config_watch import config_watch_for


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)
    # Validated once into frozen sections; each sub-container gets its typed section.
    settings = providers.Singleton(settings_for, config)

    database = providers.Container(DatabaseContainer, settings=settings.provided.database)
    # Fleet-wide limits, breakers, locks and invalidations (None: per process).
    coordination = providers.Container(
        CoordinationContainer, settings=settings.provided.coordination
    )
    cache = providers.Container(
        CacheContainer,
        settings=settings.provided.cache,
        fleet=coordination.link,
        fleet_lifecycle=coordination.lifecycle,
    )
    storage = providers.Container(StorageContainer, settings=settings.provided.storage)
    # Where the services' instances are: static base URLs, DNS SRV or etcd.
    discovery = providers.Container(DiscoveryContainer, settings=settings.provided.discovery)
    services = providers.Container(
        ServicesContainer,
        settings=settings.provided.services,
        fleet=coordination.link,
        fleet_lifecycle=coordination.lifecycle,
        discovery=discovery.backend,
        discovery_lifecycle=discovery.lifecycle,
    )
    repositories = providers.Container(
        RepositoriesContainer,
        database=database.manager,
        cache=cache.manager,
    )
    domain = providers.Container(
        DomainContainer,
        repositories=repositories,
        ai=services.ai,
        storage=storage.manager,
    )
    # Takes a new configuration while running (docs/reload.md): each section's
    # components, and the providers that serve the settings. create_container
    # adds the file and overrides the container was built from.
    reloader = providers.Singleton(
        ConfigReloader,
        settings,
        targets=providers.Dict(
            {
                "cache": cache.manager,
                "services.ai": services.ai,
                "services.analytics": services.analytics,
                "services.notifications": services.notifications,
            }
        ),
        settings_provider=settings.provider,
        config_provider=config.provider,
    )
    reloader_lifecycle = providers.Resource(started, reloader)
    # The settings under discovery.config_prefix in etcd, laid over the file and
    # followed (None unless discovery.backend is etcd): on the discovery's
    # client, so it starts after discovery and stops before it.
    config_watch = providers.Singleton(
        config_watch_for, discovery.backend, settings.provided.discovery, reloader
    )
    config_watch_lifecycle = providers.Resource(started_after, config_watch, discovery.lifecycle)
    metrics = providers.Singleton(
        build_registry,
        database=database.manager,
        cache=cache.manager,
        services=services.manager,
        reloads=reloader,
    )
