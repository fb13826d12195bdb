"""The application container: composes the component sub-containers (DESIGN.md's tree)."""

from dependency_injector import containers, providers

from ads_infra.metrics import build_registry
from containers.cache import CacheContainer
from containers.database import DatabaseContainer
from containers.repositories import RepositoriesContainer
from containers.services import ServicesContainer
from containers.storage import StorageContainer


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    database = providers.Container(DatabaseContainer, config=config.database)
    cache = providers.Container(CacheContainer, config=config.cache)
    storage = providers.Container(StorageContainer, config=config.storage)
    services = providers.Container(ServicesContainer, config=config.services)
    repositories = providers.Container(
        RepositoriesContainer,
        database=database.manager,
        cache=cache.manager,
    )
    metrics = providers.Singleton(
        build_registry,
        database=database.manager,
        cache=cache.manager,
        services=services.manager,
    )
