"""Storage sub-container: settings -> strategy (Selector on storage_type) -> FileStorageManager."""

from dependency_injector import containers, providers

from ads_infra.config import StorageConfig


class StorageContainer(containers.DeclarativeContainer):
    config = providers.Configuration()

    settings = providers.Singleton(StorageConfig.from_dict, config)
