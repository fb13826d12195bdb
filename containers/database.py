"""Database sub-container: settings -> DatabaseManager, started as a resource."""

from dependency_injector import containers, providers

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager
from ads_infra.lifecycle import started


class DatabaseContainer(containers.DeclarativeContainer):
    config = providers.Configuration()

    settings = providers.Singleton(DatabaseConfig.from_dict, config)
    manager = providers.Singleton(DatabaseManager, config=settings)
    lifecycle = providers.Resource(started, manager)
