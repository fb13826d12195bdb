"""File storage: one FileStorageManager over local disk or S3 (the seed's "Storage Management").

>>> manager = FileStorageManager(StorageConfig(base_path="./storage"))
>>> name = await manager.save_file(pdf_bytes, "document.pdf")
>>> info = await manager.get_file_info(name)

``StorageConfig`` and ``StorageType`` live in :mod:`ads_infra.config` and are
re-exported here so that the seed's import works.
"""

from ads_infra.core.settings import StorageConfig, StorageType
from ads_infra.storage.backends import STORAGE_BACKENDS, storage_backends, strategy_for
from ads_infra.storage.base import ListPage, ObjectInfo, StorageStrategy
from ads_infra.storage.codec import EncryptionKey
from ads_infra.storage.local import LocalStorageStrategy
from ads_infra.storage.manager import FileList, FileStorageManager
from ads_infra.storage.s3 import CloudStorageStrategy

__all__ = [
    "STORAGE_BACKENDS",
    "CloudStorageStrategy",
    "EncryptionKey",
    "FileList",
    "FileStorageManager",
    "ListPage",
    "LocalStorageStrategy",
    "ObjectInfo",
    "StorageConfig",
    "StorageStrategy",
    "StorageType",
    "storage_backends",
    "strategy_for",
]
