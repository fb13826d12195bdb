"""Storage sub-container: settings -> strategy (Selector on storage_type) -> FileStorageManager."""

from dependency_injector import containers, providers

from ads_infra.config import StorageConfig
from ads_infra.lifecycle import started
from ads_infra.storage import CloudStorageStrategy, FileStorageManager, LocalStorageStrategy


class StorageContainer(containers.DeclarativeContainer):
    config = providers.Configuration()

    settings = providers.Singleton(StorageConfig.from_dict, config)
    strategy = providers.Selector(
        config.storage_type,
        local=providers.Singleton(LocalStorageStrategy, config=settings),
        s3=providers.Singleton(CloudStorageStrategy, config=settings),
    )
    manager = providers.Singleton(FileStorageManager, config=settings, strategy=strategy)
    lifecycle = providers.Resource(started, manager)
