"""The storage backends by name: the one place a ``storage_type`` becomes a strategy.

:data:`STORAGE_BACKENDS` holds the built-in backends; :func:`storage_backends`
adds one builder per installed plugin (entry point group
``ads_infra.storage_strategies``, docs/plugins.md). The container's
``storage.strategy`` Selector is built from :func:`storage_backends`, and
:class:`FileStorageManager` uses :func:`strategy_for` when it is constructed
without a strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ads_infra.core import plugins
from ads_infra.core.settings import StorageConfig, StorageType
from ads_infra.storage.base import StorageStrategy
from ads_infra.storage.local import LocalStorageStrategy
from ads_infra.storage.s3 import CloudStorageStrategy

__all__ = ["STORAGE_BACKENDS", "build_plugin_strategy", "storage_backends", "strategy_for"]

_OPTIONS = "storage.options"

STORAGE_BACKENDS: Mapping[StorageType, Callable[[StorageConfig], StorageStrategy]] = {
    StorageType.LOCAL: LocalStorageStrategy,
    StorageType.S3: CloudStorageStrategy,
}


def build_plugin_strategy(name: str, config: StorageConfig) -> StorageStrategy:
    """The installed plugin ``name``'s strategy, built on ``config`` and its ``options``."""
    strategy: StorageStrategy = plugins.build_backend(
        plugins.STORAGE_GROUP, name, StorageStrategy, _OPTIONS, config
    )
    return strategy


def storage_backends() -> dict[str, Callable[[StorageConfig], StorageStrategy]]:
    """Every name ``storage_type`` accepts and what builds it: built-ins, then plugins."""
    return plugins.backends_with_plugins(
        STORAGE_BACKENDS, plugins.STORAGE_GROUP, StorageStrategy, _OPTIONS
    )


def strategy_for(config: StorageConfig) -> StorageStrategy:
    """The strategy ``config.storage_type`` names, built on ``config``."""
    if isinstance(config.storage_type, StorageType):
        return STORAGE_BACKENDS[config.storage_type](config)
    return build_plugin_strategy(config.storage_type, config)
