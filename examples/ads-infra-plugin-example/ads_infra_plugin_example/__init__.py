"""Example ads-infra plugins, installed through entry points (see docs/plugins.md).

- ``sqlite_cache``: a cache backend on one SQLite file (``cache.cache_type: sqlite``),
  shared by the processes of one host and kept across restarts.
- ``tree_storage``: storage on a plain directory tree (``storage.storage_type: tree``),
  every object an ordinary file at ``<root>/<key>``.
- ``status_page``: a service that reports component health to a status page over
  HTTP (``services.plugins: {status_page: {url: ...}}``).
"""

from ads_infra_plugin_example.sqlite_cache import SQLiteCacheOptions, SQLiteCacheStrategy
from ads_infra_plugin_example.status_page import StatusPageOptions, StatusPageService
from ads_infra_plugin_example.tree_storage import TreeOptions, TreeStorageStrategy

__all__ = [
    "SQLiteCacheOptions",
    "SQLiteCacheStrategy",
    "StatusPageOptions",
    "StatusPageService",
    "TreeOptions",
    "TreeStorageStrategy",
]
