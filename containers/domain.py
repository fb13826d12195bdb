"""Domain sub-container: the domain services, wired to the infrastructure through its ports."""

from dependency_injector import containers, providers

from ads_infra.adapters import AICopyWriter, RepositoryTransactions, StorageCreativeStore
from ads_infra.domain.services import AdService, OptimizationService
from ads_infra.external_services import AIProviderService
from ads_infra.storage import FileStorageManager


class DomainContainer(containers.DeclarativeContainer):
    repositories = providers.DependenciesContainer()
    ai: providers.Dependency[AIProviderService] = providers.Dependency()
    storage: providers.Dependency[FileStorageManager] = providers.Dependency()

    copywriter = providers.Singleton(AICopyWriter, ai)
    creatives = providers.Singleton(StorageCreativeStore, storage)
    transactions = providers.Singleton(RepositoryTransactions, repositories.factory)

    ad_service = providers.Singleton(
        AdService,
        repositories.ads,
        groups=repositories.groups,
        copywriter=copywriter,
        creatives=creatives,
    )
    optimization_service = providers.Singleton(
        OptimizationService,
        analytics=repositories.analytics,
        campaigns=repositories.campaigns,
        groups=repositories.groups,
        ads=repositories.ads,
        suggestions=repositories.optimization,
        transactions=transactions,
    )
