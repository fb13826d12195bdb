"""ads-infra: the infrastructure layer of an ads system.

The seed's entry points are importable from the package itself::

    from ads_infra import (
        DatabaseManager, FileStorageManager, CacheManager,
        ExternalServiceManager, RepositoryFactory,
    )

They load lazily (PEP 562), so ``import ads_infra.domain`` or
``ads_infra.config`` does not pull in aiohttp, redis or obstore.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DatabaseManager": "ads_infra.database",
    "DatabaseConfig": "ads_infra.database",
    "FileStorageManager": "ads_infra.storage",
    "StorageConfig": "ads_infra.storage",
    "CacheManager": "ads_infra.cache",
    "CacheConfig": "ads_infra.cache",
    "ExternalServiceManager": "ads_infra.external_services",
    "ExternalServiceConfig": "ads_infra.external_services",
    "RepositoryFactory": "ads_infra.repositories",
    "InfrastructureSystemDemo": "ads_infra.infrastructure_demo",
}

__all__ = [
    "CacheConfig",
    "CacheManager",
    "DatabaseConfig",
    "DatabaseManager",
    "ExternalServiceConfig",
    "ExternalServiceManager",
    "FileStorageManager",
    "InfrastructureSystemDemo",
    "RepositoryFactory",
    "StorageConfig",
    "__version__",
]

if TYPE_CHECKING:
    from ads_infra.cache import CacheConfig, CacheManager
    from ads_infra.database import DatabaseConfig, DatabaseManager
    from ads_infra.entrypoints.demo import InfrastructureSystemDemo
    from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager
    from ads_infra.repositories import RepositoryFactory
    from ads_infra.storage import FileStorageManager, StorageConfig


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ads_infra' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
