"""Storage sub-container: settings -> strategy (Selector on storage_type) -> FileStorageManager."""

from dependency_injector import containers, providers

from ads_infra.containers.backends import one_per_backend
from ads_infra.core.lifecycle import started
from ads_infra.core.settings import StorageConfig
from ads_infra.storage import STORAGE_BACKENDS, FileStorageManager


class StorageContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=StorageConfig)

    strategy = providers.Selector(
        settings.provided.storage_type, **one_per_backend(STORAGE_BACKENDS, config=settings)
    )
    manager = providers.Singleton(FileStorageManager, config=settings, strategy=strategy)
    lifecycle = providers.Resource(started, manager)
