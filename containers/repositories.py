"""Repositories sub-container: RepositoryFactory and the six repositories built by it."""

from dependency_injector import containers, providers

from ads_infra.database import DatabaseManager
from ads_infra.repositories import RepositoryFactory


class RepositoriesContainer(containers.DeclarativeContainer):
    database = providers.Dependency(instance_of=DatabaseManager)
    cache: providers.Dependency[object | None] = providers.Dependency(default=None)

    factory = providers.Singleton(RepositoryFactory, db_manager=database, cache=cache)
    ads = factory.provided.create_ads_repository.call()
    campaigns = factory.provided.create_campaign_repository.call()
    groups = factory.provided.create_group_repository.call()
    performance = factory.provided.create_performance_repository.call()
    analytics = factory.provided.create_analytics_repository.call()
    optimization = factory.provided.create_optimization_repository.call()
