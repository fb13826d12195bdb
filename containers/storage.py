"""Storage sub-container: settings -> strategy (Selector on storage_type) -> FileStorageManager.

The Selector's choices come from ``storage_backends()``: the built-in
backends and the installed plugins.
"""

from dependency_injector import containers, providers

from ads_infra.containers.backends import one_per_backend
from ads_infra.core.lifecycle import started
from ads_infra.core.settings import StorageConfig
from ads_infra.storage import FileStorageManager, storage_backends


class StorageContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=StorageConfig)

    strategy = providers.Selector(
        settings.provided.storage_type, **one_per_backend(storage_backends(), config=settings)
    )
    manager = providers.Singleton(FileStorageManager, config=settings, strategy=strategy)
    lifecycle = providers.Resource(started, manager)
