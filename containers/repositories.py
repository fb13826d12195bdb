"""Repositories sub-container: RepositoryFactory and the six repositories."""

from dependency_injector import containers, providers

from ads_infra.database import DatabaseManager


class RepositoriesContainer(containers.DeclarativeContainer):
    database = providers.Dependency(instance_of=DatabaseManager)
    cache: providers.Dependency[object | None] = providers.Dependency(default=None)
