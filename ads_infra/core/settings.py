"""The configuration sections of every component, and their defaults.

One frozen dataclass per component (``DatabaseConfig``, ``CacheConfig``,
``StorageConfig``, ``ServicesConfig`` and its parts) and :class:`Settings`, the
whole file. The defaults written here are the only ones: the packaged
``config.yml`` must agree with them (a test checks it), and a direct
constructor (``CacheConfig()``) gets the same values as the container.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import unicodedata
from typing import ClassVar
from urllib.parse import urlsplit

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.redact import Secret, mask_url
from ads_infra.core.section import ConfigSection, url_problem

__all__ = [
    "DEFAULT_ALLOWED_EXTENSIONS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "MAX_PRESIGN_SECONDS",
    "AIProviderConfig",
    "AIProviderType",
    "AnalyticsConfig",
    "CacheConfig",
    "CacheType",
    "DatabaseConfig",
    "HttpConfig",
    "NotificationsConfig",
    "ServicesConfig",
    "Settings",
    "StorageConfig",
    "StorageType",
]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/ads.db"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


# --- backend switches ------------------------------------------------------------


class CacheType(enum.StrEnum):
    """Which cache backend ``cache.strategy`` builds."""

    MEMORY = "memory"
    REDIS = "redis"
    REDIS_CLUSTER = "redis_cluster"


class StorageType(enum.StrEnum):
    """Which storage backend ``storage.strategy`` builds.

    ``CLOUD`` is the seed's name and an alias of ``S3``.
    """

    LOCAL = "local"
    S3 = "s3"
    CLOUD = "s3"


class AIProviderType(enum.StrEnum):
    """Which AI provider the container registers by default."""

    OFFLINE = "offline"
    OPENAI = "openai"


# --- component sections ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class DatabaseConfig(ConfigSection):
    """Database engine and pool settings (the seed's fields).

    ``max_retries`` is 5, not the seed's 100: with exponential backoff, 100
    retries would hang a caller for hours on a database that is down. Delays
    grow from ``retry_delay`` with full jitter and are capped at
    ``retry_max_delay`` seconds; their defaults (0.2 s and 5 s, not the seed's
    1 s) keep a caller's whole wait on a database that is down to seconds.

    ``pool_pre_ping`` is off: with asyncpg a ping costs three extra round
    trips on every checkout (BEGIN, ping, ROLLBACK), which halves the speed
    of a single-row read, and buys nothing for the repositories and
    :meth:`~ads_infra.database.DatabaseManager.run`: a dead pooled connection
    fails its first statement, SQLAlchemy then discards every connection of
    the pool opened before it, and the unit is run again on a fresh one
    (``ads-infra bench db`` shows both costs). Only a bare ``get_session()``,
    which never retries, sees one error after the server restarts; turn the
    ping on for code that relies on that.

    ``postgresql://`` and ``sqlite://`` URLs are upgraded to their async
    drivers (asyncpg, aiosqlite).
    """

    _section: ClassVar[str] = "database"

    url: str = DEFAULT_DATABASE_URL
    pool_size: int = dataclasses.field(default=20, metadata={"min": 1})
    max_overflow: int = dataclasses.field(default=30, metadata={"min": 0})
    pool_pre_ping: bool = False
    pool_recycle: int = 3600
    pool_timeout: int = dataclasses.field(default=30, metadata={"min": 0})
    echo: bool = False
    max_retries: int = dataclasses.field(default=5, metadata={"min": 0})
    retry_delay: float = dataclasses.field(default=0.2, metadata={"min": 0})
    retry_max_delay: float = dataclasses.field(default=5.0, metadata={"min": 0})
    statement_timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})

    _ASYNC_DRIVERS: ClassVar[dict[str, str]] = {
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
    }

    def validate(self) -> None:
        problem = url_problem(self.url, ("postgresql", "postgres", "sqlite"))
        if problem:
            raise ConfigurationError(
                f"{mask_url(self.url)!r} {problem}; use e.g. "
                "postgresql+asyncpg://user@host:5432/db or sqlite+aiosqlite:///./var/ads.db",
                key="url",
            )
        scheme, rest = self.url.split("://", 1)
        if "+" not in scheme:
            self._normalize(url=f"{self._ASYNC_DRIVERS[scheme]}://{rest}")
        elif scheme.startswith("postgres") and scheme.split("+", 1)[1] not in (
            "asyncpg",
            "psycopg",
        ):
            raise ConfigurationError(
                f"driver {scheme.split('+', 1)[1]!r} is not async; use postgresql+asyncpg://",
                key="url",
            )
        elif scheme.startswith("sqlite") and scheme != "sqlite+aiosqlite":
            raise ConfigurationError("use sqlite+aiosqlite:// for SQLite", key="url")

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)


@dataclasses.dataclass(frozen=True, repr=False)
class CacheConfig(ConfigSection):
    """Cache backend settings (the seed's fields, plus namespace, codec and fallback).

    ``cache_type`` defaults to ``memory`` rather than the seed's ``redis``: a
    bare ``CacheManager()`` must work with no server (the seed's own unit test
    does exactly that); the container picks Redis from ADS_CACHE_TYPE.
    With ``redis``/``redis_cluster`` and no ``redis_url``, the URL defaults to
    :data:`DEFAULT_REDIS_URL` (a local server).

    ``default_ttl`` 0 stores without expiry. Every key is written as
    ``{namespace}:{key}``; ``clear()`` deletes only that namespace, so it may
    not be empty. ``serializer`` is ``json`` (orjson, the safe default),
    ``msgpack`` or ``pickle`` (runs code on load: only with trusted writers).
    Payloads above ``compression_threshold`` bytes are zlib-compressed when
    ``compression_enabled``. ``socket_timeout`` bounds each Redis call and
    ``pool_timeout`` the wait for a free pooled connection. ``auto_pipeline``
    sends the single-key commands that concurrent callers issue in the same
    event-loop iteration as one pipeline (standalone Redis only).

    With ``fallback_enabled``, a Redis failure never reaches the caller: the
    manager serves from memory and probes Redis after
    ``fallback_probe_interval`` seconds, doubling up to
    ``fallback_probe_max_interval``. ``two_level`` keeps a memory copy of
    what was read for ``local_ttl`` seconds in front of Redis.
    """

    _section: ClassVar[str] = "cache"

    default_ttl: int = dataclasses.field(default=300, metadata={"min": 0})
    max_size: int = dataclasses.field(default=1000, metadata={"min": 1})
    cache_type: CacheType = CacheType.MEMORY
    redis_url: str | None = None
    redis_max_connections: int = dataclasses.field(default=50, metadata={"min": 1})
    compression_enabled: bool = True
    stats_enabled: bool = True
    namespace: str = "ads"
    serializer: str = "json"
    compression_threshold: int = dataclasses.field(default=1024, metadata={"min": 0})
    socket_timeout: float = dataclasses.field(default=1.0, metadata={"min": 0})
    pool_timeout: float = dataclasses.field(default=5.0, metadata={"min": 0})
    auto_pipeline: bool = True
    scan_batch_size: int = dataclasses.field(default=1000, metadata={"min": 1})
    fallback_enabled: bool = True
    fallback_probe_interval: float = dataclasses.field(default=1.0, metadata={"min": 0.01})
    fallback_probe_max_interval: float = dataclasses.field(default=10.0, metadata={"min": 0.01})
    two_level: bool = False
    local_ttl: int = dataclasses.field(default=5, metadata={"min": 0})

    _SERIALIZERS: ClassVar[tuple[str, ...]] = ("json", "msgpack", "pickle")

    def validate(self) -> None:
        if self.serializer not in self._SERIALIZERS:
            raise ConfigurationError(
                f"unknown value {self.serializer!r}; allowed: {', '.join(self._SERIALIZERS)}",
                key="serializer",
            )
        if not self.namespace.strip():
            raise ConfigurationError(
                "must not be empty: every key is stored under it and clear() deletes "
                "only that namespace; use e.g. 'ads'",
                key="namespace",
            )
        if self.redis_url:
            problem = url_problem(self.redis_url, ("redis", "rediss", "unix"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.redis_url)!r} {problem}", key="redis_url")
        if self.cache_type is not CacheType.MEMORY and not self.redis_url:
            self._normalize(redis_url=DEFAULT_REDIS_URL)
        self._normalize(
            fallback_probe_max_interval=max(
                self.fallback_probe_max_interval, self.fallback_probe_interval
            )
        )


# Web content that runs scripts when a browser opens it (.html, .svg, .xml) is not
# allowed by default: a stored file served from the ads domain would run there.
DEFAULT_ALLOWED_EXTENSIONS = [
    ".jpg", ".jpeg", ".png", ".gif", ".webp",
    ".mp4", ".webm", ".mov",
    ".pdf", ".txt", ".csv", ".json",
    ".zip", ".gz",
]  # fmt: skip


# S3 refuses presigned URLs valid for longer than 7 days (SigV4).
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# Every key is stored as "<prefix>/<key>", keys are at most 512 bytes and S3 keys 1024.
_MAX_S3_PREFIX_BYTES = 511


def _s3_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot lead object keys, or None.

    The rules of ``ads_infra.storage.base.validate_key`` (which this module cannot
    import: storage imports config), minus the surrounding slashes the S3
    backend strips.
    """
    prefix = prefix.strip("/")
    if not prefix:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in prefix):
        return "contains control characters"
    if "\\" in prefix or re.match(r"^[A-Za-z]:", prefix):
        return "is a Windows path"
    if any(part in ("", ".", "..") for part in prefix.split("/")):
        return "has an empty, '.' or '..' segment"
    if len(prefix.encode("utf-8")) > _MAX_S3_PREFIX_BYTES:
        return f"is longer than {_MAX_S3_PREFIX_BYTES} bytes"
    return None


@dataclasses.dataclass(frozen=True, repr=False)
class StorageConfig(ConfigSection):
    """File storage settings (the seed's fields, plus S3 and encryption).

    ``base_path`` defaults to ``./var/storage`` rather than the seed's
    ``storage``: every file the embedded defaults write (this folder and the
    SQLite database) lives under ``./var``, one folder to ignore or delete.
    """

    _section: ClassVar[str] = "storage"

    base_path: str = "./var/storage"
    cache_ttl: int = dataclasses.field(default=3600, metadata={"min": 0})
    max_file_size: int = dataclasses.field(default=100 * 1024 * 1024, metadata={"min": 1})
    allowed_extensions: list[str] = dataclasses.field(
        default_factory=lambda: list(DEFAULT_ALLOWED_EXTENSIONS)
    )
    storage_type: StorageType = StorageType.LOCAL
    compression_enabled: bool = True
    encryption_enabled: bool = False
    encryption_key: Secret | None = None
    s3_bucket: str = "ads-storage"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: Secret | None = None
    s3_secret_access_key: Secret | None = None
    s3_prefix: str = ""
    multipart_threshold: int = dataclasses.field(default=8 * 1024 * 1024, metadata={"min": 1})
    presign_expiry: int = dataclasses.field(default=3600, metadata={"min": 1})
    temp_max_age: int = dataclasses.field(default=3600, metadata={"min": 0})
    # Where local storage keeps a file's metadata: "auto" = in the file's extended
    # attributes (one fsync, published with the data), else a "<name>~meta" file
    # beside it; "sidecar" = always the file (for backups that drop xattrs).
    local_metadata: str = "auto"

    _LOCAL_METADATA: ClassVar[tuple[str, ...]] = ("auto", "sidecar")

    def validate(self) -> None:
        if self.local_metadata not in self._LOCAL_METADATA:
            raise ConfigurationError(
                f"unknown value {self.local_metadata!r}; allowed: auto, sidecar",
                key="local_metadata",
            )
        self._normalize(
            allowed_extensions=[
                ext.lower() if ext.startswith(".") else f".{ext.lower()}"
                for ext in self.allowed_extensions
            ]
        )
        if self.s3_endpoint_url:
            problem = url_problem(self.s3_endpoint_url, ("http", "https"))
            if not problem and "@" in urlsplit(self.s3_endpoint_url).netloc:
                # S3 signs requests with the access keys; a user:password in the URL is
                # never used, and obstore repeats the URL whole in its error messages.
                problem = (
                    "holds user credentials, which S3 does not use; remove them and set "
                    "s3_access_key_id / s3_secret_access_key (AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY) instead"
                )
            if problem:
                raise ConfigurationError(
                    f"{mask_url(self.s3_endpoint_url)!r} {problem}", key="s3_endpoint_url"
                )
        problem = _s3_prefix_problem(self.s3_prefix)
        if problem:
            raise ConfigurationError(
                f"{ascii(self.s3_prefix)[:80]} {problem}; use '/'-separated names like "
                "'tenant-1/ads'",
                key="s3_prefix",
            )
        if self.presign_expiry > MAX_PRESIGN_SECONDS:
            raise ConfigurationError(
                f"must be <= {MAX_PRESIGN_SECONDS} (7 days, S3's limit for presigned URLs), "
                f"got {self.presign_expiry}",
                key="presign_expiry",
            )


@dataclasses.dataclass(frozen=True, repr=False)
class HttpConfig(ConfigSection):
    """The one aiohttp session that every external service shares."""

    _section: ClassVar[str] = "services.http"

    total_timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    connect_timeout: float = dataclasses.field(default=5.0, metadata={"min": 0})
    connector_limit: int = dataclasses.field(default=100, metadata={"min": 0})
    connector_limit_per_host: int = dataclasses.field(default=20, metadata={"min": 0})


@dataclasses.dataclass(frozen=True, repr=False)
class AIProviderConfig(ConfigSection):
    """The AI content provider the container registers (``services.ai``)."""

    _section: ClassVar[str] = "services.ai"

    provider: AIProviderType = AIProviderType.OFFLINE
    base_url: str | None = None
    api_key: Secret | None = None
    model: str = "gpt-4o-mini"
    rate_limit: int = dataclasses.field(default=60, metadata={"min": 1})
    timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=3, metadata={"min": 0})
    max_tokens: int = dataclasses.field(default=256, metadata={"min": 1})
    temperature: float = dataclasses.field(default=0.7, metadata={"min": 0})

    def validate(self) -> None:
        if self.base_url:
            problem = url_problem(self.base_url, ("http", "https"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.base_url)!r} {problem}", key="base_url")
        if self.provider is AIProviderType.OPENAI and not self.base_url:
            self._normalize(base_url="https://api.openai.com")


@dataclasses.dataclass(frozen=True, repr=False)
class AnalyticsConfig(ConfigSection):
    """Segment-style analytics endpoint (``/v1/batch``); off when ``url`` is empty.

    Events are sent in batches of ``flush_size``, every ``flush_interval``
    seconds and on close; at most ``max_buffer`` wait while the endpoint is
    down (the oldest are dropped beyond that).
    """

    _section: ClassVar[str] = "services.analytics"

    url: str | None = None
    write_key: Secret | None = None
    flush_size: int = dataclasses.field(default=100, metadata={"min": 1})
    flush_interval: float = dataclasses.field(default=5.0, metadata={"min": 0})
    max_buffer: int = dataclasses.field(default=10_000, metadata={"min": 1})
    rate_limit: int = dataclasses.field(default=50, metadata={"min": 1})
    timeout: float = dataclasses.field(default=10.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=3, metadata={"min": 0})

    def validate(self) -> None:
        if self.url:
            problem = url_problem(self.url, ("http", "https"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.url)!r} {problem}", key="url")


@dataclasses.dataclass(frozen=True, repr=False)
class NotificationsConfig(ConfigSection):
    """Slack-style and generic JSON webhooks; each off when empty.

    Webhook URLs carry their credential in the path, so they are secrets.
    """

    _section: ClassVar[str] = "services.notifications"

    slack_webhook_url: Secret | None = None
    webhook_url: Secret | None = None
    rate_limit: int = dataclasses.field(default=10, metadata={"min": 1})
    timeout: float = dataclasses.field(default=10.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=3, metadata={"min": 0})

    def validate(self) -> None:
        for key in ("slack_webhook_url", "webhook_url"):
            secret = getattr(self, key)
            if secret:
                problem = url_problem(secret.get_secret_value(), ("http", "https"))
                if problem:
                    # The URL itself is the secret: describe the problem only.
                    raise ConfigurationError(f"the webhook URL {problem}", key=key)


@dataclasses.dataclass(frozen=True, repr=False)
class ServicesConfig(ConfigSection):
    """External HTTP services: the shared session and each service."""

    _section: ClassVar[str] = "services"

    http: HttpConfig = dataclasses.field(default_factory=HttpConfig)
    ai: AIProviderConfig = dataclasses.field(default_factory=AIProviderConfig)
    analytics: AnalyticsConfig = dataclasses.field(default_factory=AnalyticsConfig)
    notifications: NotificationsConfig = dataclasses.field(default_factory=NotificationsConfig)


@dataclasses.dataclass(frozen=True, repr=False)
class Settings(ConfigSection):
    """The whole configuration file: one field per component section."""

    _section: ClassVar[str] = ""

    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    cache: CacheConfig = dataclasses.field(default_factory=CacheConfig)
    storage: StorageConfig = dataclasses.field(default_factory=StorageConfig)
    services: ServicesConfig = dataclasses.field(default_factory=ServicesConfig)
