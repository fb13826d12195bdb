"""Example ads-infra plugins, installed through entry points (see docs/plugins.md).

- ``sqlite_cache``: a cache backend on one SQLite file (``cache.cache_type: sqlite``),
  shared by the processes of one host and kept across restarts.
- ``status_page``: a service that reports component health to a status page over
  HTTP (``services.plugins: {status_page: {url: ...}}``).
"""

from ads_infra_plugin_example.sqlite_cache import SQLiteCacheOptions, SQLiteCacheStrategy
from ads_infra_plugin_example.status_page import StatusPageOptions, StatusPageService

__all__ = ["SQLiteCacheOptions", "SQLiteCacheStrategy", "StatusPageOptions", "StatusPageService"]
