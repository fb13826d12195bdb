"""The storage backends by name: the one place a ``storage_type`` becomes a strategy.

:data:`STORAGE_BACKENDS` holds the built-in backends; :func:`storage_backends`
adds one builder per installed plugin (entry point group
``ads_infra.storage_strategies``, docs/plugins.md). The container's
``storage.strategy`` Selector is built from :func:`storage_backends`, and
:class:`FileStorageManager` uses :func:`strategy_for` when it is constructed
without a strategy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from ads_infra.core import plugins
from ads_infra.core.settings import StorageConfig, StorageType
from ads_infra.storage.base import StorageStrategy
from ads_infra.storage.local import LocalStorageStrategy
from ads_infra.storage.s3 import CloudStorageStrategy

__all__ = ["STORAGE_BACKENDS", "build_plugin_strategy", "storage_backends", "strategy_for"]

STORAGE_BACKENDS: Mapping[StorageType, Callable[[StorageConfig], StorageStrategy]] = {
    StorageType.LOCAL: LocalStorageStrategy,
    StorageType.S3: CloudStorageStrategy,
}


def build_plugin_strategy(name: str, config: StorageConfig) -> StorageStrategy:
    """The installed plugin ``name``'s strategy, built on ``config`` and its ``options``.

    A plugin class is called as ``cls(config)``, or ``cls(config, options)``
    when it declares an ``options_type``.
    """
    cls: type[StorageStrategy] = plugins.load_class(plugins.STORAGE_GROUP, name, StorageStrategy)
    return plugins.instantiate(
        cls, plugins.STORAGE_GROUP, name, config, options=config.options, key="storage.options"
    )


def storage_backends() -> dict[str, Callable[[StorageConfig], StorageStrategy]]:
    """Every name ``storage_type`` accepts and what builds it: built-ins, then plugins.

    A plugin is imported only when its builder is called; a plugin named like a
    built-in backend is shadowed by it.
    """
    table: dict[str, Callable[[StorageConfig], StorageStrategy]] = {
        str(name): build for name, build in STORAGE_BACKENDS.items()
    }
    for name in plugins.names(plugins.STORAGE_GROUP):
        table.setdefault(name, functools.partial(build_plugin_strategy, name))
    return table


def strategy_for(config: StorageConfig) -> StorageStrategy:
    """The strategy ``config.storage_type`` names, built on ``config``."""
    if isinstance(config.storage_type, StorageType):
        return STORAGE_BACKENDS[config.storage_type](config)
    return build_plugin_strategy(config.storage_type, config)
