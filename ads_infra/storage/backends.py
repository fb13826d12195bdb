"""The storage backends by name: the one place a ``storage_type`` becomes a strategy.

The container's ``storage.strategy`` Selector is built from
:data:`STORAGE_BACKENDS`, and :class:`FileStorageManager` uses
:func:`strategy_for` when it is constructed without a strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ads_infra.core.settings import StorageConfig, StorageType
from ads_infra.storage.base import StorageStrategy
from ads_infra.storage.local import LocalStorageStrategy
from ads_infra.storage.s3 import CloudStorageStrategy

__all__ = ["STORAGE_BACKENDS", "strategy_for"]

STORAGE_BACKENDS: Mapping[StorageType, Callable[[StorageConfig], StorageStrategy]] = {
    StorageType.LOCAL: LocalStorageStrategy,
    StorageType.S3: CloudStorageStrategy,
}


def strategy_for(config: StorageConfig) -> StorageStrategy:
    """The strategy ``config.storage_type`` names, built on ``config``."""
    return STORAGE_BACKENDS[config.storage_type](config)
