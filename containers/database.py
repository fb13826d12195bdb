"""Database sub-container: its settings -> DatabaseManager, started as a resource."""

from dependency_injector import containers, providers

from ads_infra.core.lifecycle import started
from ads_infra.core.settings import DatabaseConfig
from ads_infra.database import DatabaseManager


class DatabaseContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=DatabaseConfig)

    manager = providers.Singleton(DatabaseManager, config=settings)
    lifecycle = providers.Resource(started, manager)
