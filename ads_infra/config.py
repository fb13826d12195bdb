"""The configuration API in one import: sections, loading and secret masking.

A facade over :mod:`ads_infra.core.settings` (the sections and their
defaults), :mod:`ads_infra.core.loader` (file lookup, YAML, ``${ENV}``) and
:mod:`ads_infra.core.redact` (secrets), for host apps and tests.
"""

from ads_infra.core.loader import (
    DEFAULT_CONFIG_FILE,
    config_file_path,
    load_settings,
    merge_sections,
)
from ads_infra.core.redact import Secret, mask_url
from ads_infra.core.section import ConfigSection
from ads_infra.core.settings import (
    DEFAULT_ALLOWED_EXTENSIONS,
    DEFAULT_DATABASE_URL,
    MAX_PRESIGN_SECONDS,
    AIProviderConfig,
    AIProviderType,
    AnalyticsConfig,
    CacheConfig,
    CacheType,
    DatabaseConfig,
    DiscoveryBackend,
    DiscoveryConfig,
    HttpConfig,
    LoadBalancing,
    NotificationsConfig,
    ServicesConfig,
    Settings,
    StorageConfig,
    StorageType,
)

__all__ = [
    "DEFAULT_ALLOWED_EXTENSIONS",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATABASE_URL",
    "MAX_PRESIGN_SECONDS",
    "AIProviderConfig",
    "AIProviderType",
    "AnalyticsConfig",
    "CacheConfig",
    "CacheType",
    "ConfigSection",
    "DatabaseConfig",
    "DiscoveryBackend",
    "DiscoveryConfig",
    "HttpConfig",
    "LoadBalancing",
    "NotificationsConfig",
    "Secret",
    "ServicesConfig",
    "Settings",
    "StorageConfig",
    "StorageType",
    "config_file_path",
    "load_settings",
    "mask_url",
    "merge_sections",
]
