"""The configuration sections of every component, and their defaults.

One frozen dataclass per component (``DatabaseConfig``, ``CacheConfig``,
``StorageConfig``, ``ServicesConfig`` and its parts) and :class:`Settings`, the
whole file. The defaults written here are the only ones: the packaged
``config.yml`` must agree with them (a test checks it), and a direct
constructor (``CacheConfig()``) gets the same values as the container.

A field with ``metadata={"reloadable": True}`` may change while the layer runs
(``ads_infra.core.reload``, docs/reload.md); every other field needs a restart.

Longer than the other modules on purpose: every default of the layer in one
file, read top to bottom like the configuration file it generates.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
import unicodedata
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from ads_infra.core import plugins
from ads_infra.core.errors import ConfigurationError, PluginError
from ads_infra.core.redact import Secret, mask_url
from ads_infra.core.section import ConfigSection, url_problem

__all__ = [
    "DEFAULT_ALLOWED_EXTENSIONS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_ETCD_URL",
    "DEFAULT_REDIS_URL",
    "LOG_LEVELS",
    "MAX_PRESIGN_SECONDS",
    "SSL_MODES",
    "TLS_KEYS",
    "AIProviderConfig",
    "AIProviderType",
    "AnalyticsConfig",
    "CacheConfig",
    "CacheType",
    "CoordinationBackend",
    "CoordinationConfig",
    "DatabaseConfig",
    "DiscoveryBackend",
    "DiscoveryConfig",
    "HttpConfig",
    "LoadBalancing",
    "LoggingConfig",
    "NotificationsConfig",
    "ServicesConfig",
    "Settings",
    "StorageConfig",
    "StorageType",
]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/ads.db"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_ETCD_URL = "http://127.0.0.1:2379"
# libpq's sslmode values, weakest first.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TLS_KEYS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


# --- backend switches ------------------------------------------------------------


class CacheType(enum.StrEnum):
    """Which cache backend ``cache.strategy`` builds."""

    MEMORY = "memory"
    REDIS = "redis"
    REDIS_CLUSTER = "redis_cluster"


class CoordinationBackend(enum.StrEnum):
    """Where cross-process guarantees live: nowhere (``local``) or one Redis."""

    LOCAL = "local"
    REDIS = "redis"


class DiscoveryBackend(enum.StrEnum):
    """Where the external services' base URLs come from (docs/discovery.md)."""

    STATIC = "static"
    DNS = "dns"
    ETCD = "etcd"


class LoadBalancing(enum.StrEnum):
    """How a call picks one of a discovered service's instances."""

    ROUND_ROBIN = "round_robin"
    LEAST_OUTSTANDING = "least_outstanding"


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


def _backend_options(
    group: str,
    key: str,
    name: enum.Enum | str,
    options: dict[str, Any],
    builtins: type[enum.Enum],
) -> dict[str, Any]:
    """The ``options`` of the backend ``name`` (the value of ``key``), validated.

    A built-in backend takes none: its settings are the section's own keys. Any
    other name must be an installed plugin's (core/plugins.py), whose own
    ``options_type`` validates them; loading it here makes a broken plugin a
    configuration error at load time, not at first use.
    """
    if isinstance(name, builtins):
        if options:
            raise ConfigurationError(
                f"applies to plugin backends only; {name.value!r} is built in and is set by "
                "this section's own keys",
                key="options",
            )
        return {}
    try:
        if plugins.find(group, str(name)) is None:
            error = plugins.unknown_name(group, name, (str(m.value) for m in builtins))
            raise ConfigurationError(error.reason, key=key)
        return plugins.validated_options(group, str(name), options)
    except PluginError as exc:  # the plugin itself is broken: the name is what to change
        raise PluginError(exc.reason, key=key) from exc.__cause__


# --- component sections ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class DatabaseConfig(ConfigSection):
    """Database engine, pool, TLS, PgBouncer and read-replica settings.

    ``max_retries`` is 5, not the seed's 100: with exponential backoff, 100
    retries would hang a caller for hours on a database that is down. Delays
    grow from ``retry_delay`` with full jitter and are capped at
    ``retry_max_delay`` seconds; their defaults (0.2 s and 5 s, not the seed's
    1 s) keep a caller's whole wait on a database that is down to seconds.

    The pool holds at most ``pool_size + max_overflow`` connections (5 + 5,
    not the seed's 20 + 30): a default PostgreSQL accepts 100 connections, so
    about nine processes fit on one server; ``ads-infra health`` prints the
    budget. A caller that waits ``pool_timeout`` seconds for a connection gets
    PoolExhaustedError at once (never retried: the pool is busy, not broken).

    ``pgbouncer``: the server is reached through PgBouncer in transaction
    pooling mode: no statement cache, unique prepared statement names, no
    startup parameter it refuses, ``statement_timeout`` set per transaction.

    TLS takes libpq's names, in the URL (``?sslmode=verify-full&sslrootcert=
    ca.pem``, as cloud providers print it) or here; ``sslmode`` is one of
    :data:`SSL_MODES`.

    ``replica_urls``: read replicas. Read-only repository calls outside a unit
    of work go to one of them while its data is at most ``max_replica_lag``
    seconds old (checked every ``replica_check_interval`` seconds), else to
    the primary.

    ``pool_pre_ping`` is off: with asyncpg a ping costs three extra round
    trips on every checkout (BEGIN, ping, ROLLBACK), which halves the speed
    of a single-row read, and buys nothing for the repositories and
    :meth:`~ads_infra.database.DatabaseManager.run`: a dead pooled connection
    fails its first statement, SQLAlchemy then discards every connection of
    the pool opened before it, and the unit is run again on a fresh one
    (``ads-infra bench db`` shows both costs). Only a bare ``get_session()``,
    which never retries, sees one error after the server restarts; turn the
    ping on for code that relies on that.

    ``auto_migrate``: when the ads-infra schema is created or brought up to
    date without ``ads-infra db upgrade``: ``sqlite`` (the default) on an
    SQLite database's first use by a repository, so the embedded default
    works out of the box; ``always`` on any database (PostgreSQL takes an
    advisory lock, so processes starting together migrate once); ``never``.
    A server database is otherwise migrated as a deploy step, where a
    failure stops the deploy rather than the first request.

    ``postgresql://`` and ``sqlite://`` URLs are upgraded to their async
    drivers (asyncpg, aiosqlite).
    """

    _section: ClassVar[str] = "database"

    url: str = DEFAULT_DATABASE_URL
    pool_size: int = dataclasses.field(default=5, metadata={"min": 1})
    max_overflow: int = dataclasses.field(default=5, metadata={"min": 0})
    pool_pre_ping: bool = False
    pool_recycle: int = 3600
    pool_timeout: int = dataclasses.field(default=30, metadata={"min": 0})
    echo: bool = False
    max_retries: int = dataclasses.field(default=5, metadata={"min": 0})
    retry_delay: float = dataclasses.field(default=0.2, metadata={"min": 0})
    retry_max_delay: float = dataclasses.field(default=5.0, metadata={"min": 0})
    statement_timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    pgbouncer: bool = False
    sslmode: str | None = None
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    replica_urls: list[str] = dataclasses.field(default_factory=list)
    max_replica_lag: float = dataclasses.field(default=5.0, metadata={"min": 0})
    replica_check_interval: float = dataclasses.field(default=1.0, metadata={"min": 0.05})
    auto_migrate: str = "sqlite"

    _AUTO_MIGRATE: ClassVar[tuple[str, ...]] = ("sqlite", "always", "never")
    _ASYNC_DRIVERS: ClassVar[dict[str, str]] = {
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
    }

    def validate(self) -> None:
        url = self._async_url(self.url, "url", ("postgresql", "postgres", "sqlite"))
        self._normalize(url=url)
        replicas = [
            self._async_url(u, f"replica_urls[{i}]", ("postgresql", "postgres"))
            for i, u in enumerate(self.replica_urls)
        ]
        if replicas and self.is_sqlite:
            raise ConfigurationError(
                "read replicas need a PostgreSQL primary; the url is SQLite", key="replica_urls"
            )
        self._normalize(replica_urls=replicas)
        if self.auto_migrate not in self._AUTO_MIGRATE:
            raise ConfigurationError(
                f"unknown value {self.auto_migrate!r}; allowed: sqlite, always, never",
                key="auto_migrate",
            )
        self._check_tls()

    def _async_url(self, url: str, key: str, schemes: tuple[str, ...]) -> str:
        problem = url_problem(url, schemes)
        if problem:
            raise ConfigurationError(
                f"{mask_url(url)!r} {problem}; use e.g. "
                "postgresql+asyncpg://user@host:5432/db or sqlite+aiosqlite:///./var/ads.db",
                key=key,
            )
        scheme, rest = url.split("://", 1)
        if "+" not in scheme:
            return f"{self._ASYNC_DRIVERS[scheme]}://{rest}"
        driver = scheme.split("+", 1)[1]
        if scheme.startswith("postgres") and driver not in ("asyncpg", "psycopg"):
            raise ConfigurationError(
                f"driver {driver!r} is not async; use postgresql+asyncpg://", key=key
            )
        if scheme.startswith("sqlite") and scheme != "sqlite+aiosqlite":
            raise ConfigurationError("use sqlite+aiosqlite:// for SQLite", key=key)
        return url

    def _check_tls(self) -> None:
        """Every TLS value, here and in each URL's query: a known mode, files that exist."""
        sources = [("", dict(self.tls_fields()))]
        for key, url in (("url", self.url), *self._replica_keys()):
            query = dict(parse_qsl(urlsplit(url).query))
            sources.append((key, {k: v for k, v in query.items() if k in TLS_KEYS}))
        for where, values in sources:
            mode = values.get("sslmode")
            key = f"{where}?sslmode" if where else "sslmode"
            if mode is not None and mode not in SSL_MODES:
                raise ConfigurationError(
                    f"unknown value {mode!r}; allowed: {', '.join(SSL_MODES)} (libpq's modes)",
                    key=key,
                )
            for name in ("sslrootcert", "sslcert", "sslkey"):
                path = values.get(name)
                if path and path != "system" and not Path(path).expanduser().is_file():
                    raise ConfigurationError(
                        f"file {path!r} does not exist or is not a file",
                        key=f"{where}?{name}" if where else name,
                    )
        if self.is_sqlite and any(v for _, v in self.tls_fields()):
            raise ConfigurationError("TLS settings apply to PostgreSQL only", key="sslmode")

    def _replica_keys(self) -> list[tuple[str, str]]:
        return [(f"replica_urls[{i}]", u) for i, u in enumerate(self.replica_urls)]

    def tls_fields(self) -> list[tuple[str, str | None]]:
        return [(name, getattr(self, name)) for name in TLS_KEYS]

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def migrates_on_first_use(self) -> bool:
        """Whether repositories create or upgrade the schema themselves (``auto_migrate``)."""
        return self.auto_migrate == "always" or (self.auto_migrate == "sqlite" and self.is_sqlite)

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def masked(self) -> dict[str, Any]:
        out = super().masked()
        out["replica_urls"] = [mask_url(u) for u in self.replica_urls]
        return out


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

    default_ttl: int = dataclasses.field(default=300, metadata={"min": 0, "reloadable": True})
    max_size: int = dataclasses.field(default=1000, metadata={"min": 1})
    cache_type: CacheType | str = CacheType.MEMORY
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
    local_ttl: int = dataclasses.field(default=5, metadata={"min": 0, "reloadable": True})
    # The largest value read back (after decompression): a payload planted in
    # Redis cannot make a read take unbounded memory or time.
    max_value_bytes: int = dataclasses.field(default=16 * 1024 * 1024, metadata={"min": 1024})
    # A plugin backend's own settings, validated by the plugin (docs/plugins.md).
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

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
        if self.cache_type in (CacheType.REDIS, CacheType.REDIS_CLUSTER) and not self.redis_url:
            self._normalize(redis_url=DEFAULT_REDIS_URL)
        options = _backend_options(
            plugins.CACHE_GROUP, "cache_type", self.cache_type, self.options, CacheType
        )
        self._normalize(options=options)
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

    ``compression_enabled`` defaults to None rather than the seed's True:
    compressed on local storage as in the seed, but not on S3, where other
    readers (presigned URLs in a browser, boto3, the aws CLI) must get the
    bytes that were uploaded; set it to true to compress there too.
    """

    _section: ClassVar[str] = "storage"

    base_path: str = "./var/storage"
    cache_ttl: int = dataclasses.field(default=3600, metadata={"min": 0})
    max_file_size: int = dataclasses.field(default=100 * 1024 * 1024, metadata={"min": 1})
    allowed_extensions: list[str] = dataclasses.field(
        default_factory=lambda: list(DEFAULT_ALLOWED_EXTENSIONS)
    )
    storage_type: StorageType | str = StorageType.LOCAL
    # gzip for text-like types. None: on for local storage, off for S3, where
    # presigned URLs, boto3 and the aws CLI must get the original bytes; when on
    # for S3, unencrypted objects carry Content-Encoding: gzip.
    compression_enabled: bool | None = None
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
    # Create-only writes on S3 rely on If-None-Match: *, which some servers ignore
    # (s3rver, old MinIO). "verify": start() checks the server, and refuses to run on
    # one that ignores it; "emulate": checks, and there falls back to a HEAD before
    # the PUT (racy: two concurrent creators can both succeed, the last one wins);
    # "trust": no check (AWS S3, current MinIO and R2 honour it).
    s3_create_only: str = "verify"
    # Where local storage keeps a file's metadata: "auto" = in the file's extended
    # attributes (one fsync, published with the data), else a "<name>~meta" file
    # beside it; "sidecar" = always the file (for backups that drop xattrs).
    local_metadata: str = "auto"
    # A plugin backend's own settings, validated by the plugin (docs/plugins.md).
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    _LOCAL_METADATA: ClassVar[tuple[str, ...]] = ("auto", "sidecar")
    _CREATE_ONLY: ClassVar[tuple[str, ...]] = ("verify", "emulate", "trust")

    def validate(self) -> None:
        options = _backend_options(
            plugins.STORAGE_GROUP, "storage_type", self.storage_type, self.options, StorageType
        )
        self._normalize(options=options)
        if self.s3_create_only not in self._CREATE_ONLY:
            raise ConfigurationError(
                f"unknown value {self.s3_create_only!r}; allowed: verify, emulate, trust",
                key="s3_create_only",
            )
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
    model: str = dataclasses.field(default="gpt-4o-mini", metadata={"reloadable": True})
    rate_limit: int = dataclasses.field(default=60, metadata={"min": 1, "reloadable": True})
    timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=3, metadata={"min": 0, "reloadable": True})
    # The breaker opens after this many consecutive failed attempts, for
    # recovery_timeout seconds (then one probe goes through).
    failure_threshold: int = dataclasses.field(default=5, metadata={"min": 1, "reloadable": True})
    recovery_timeout: float = dataclasses.field(
        default=30.0, metadata={"min": 0, "reloadable": True}
    )
    max_tokens: int = dataclasses.field(default=256, metadata={"min": 1})
    temperature: float = dataclasses.field(default=0.7, metadata={"min": 0, "reloadable": True})
    # How the token limit is sent: "max_tokens" (what most OpenAI-compatible servers
    # read), "max_completion_tokens" (what OpenAI's newer and reasoning models
    # require), or "auto": the latter for api.openai.com and reasoning models.
    limit_parameter: str = "auto"
    # Seconds one generation may take in all, retries and their waits included.
    deadline: float = dataclasses.field(default=90.0, metadata={"min": 1})

    _LIMIT_PARAMETERS: ClassVar[tuple[str, ...]] = ("auto", "max_tokens", "max_completion_tokens")

    def validate(self) -> None:
        if self.limit_parameter not in self._LIMIT_PARAMETERS:
            raise ConfigurationError(
                f"unknown value {self.limit_parameter!r}; allowed: "
                f"{', '.join(self._LIMIT_PARAMETERS)}",
                key="limit_parameter",
            )
        if self.base_url:
            problem = url_problem(self.base_url, ("http", "https"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.base_url)!r} {problem}", key="base_url")
        if self.provider is AIProviderType.OPENAI and not self.base_url:
            self._normalize(base_url="https://api.openai.com")


@dataclasses.dataclass(frozen=True, repr=False)
class AnalyticsConfig(ConfigSection):
    """Segment-style analytics endpoint (``/v1/batch``); off when ``url`` is empty.

    Events are sent in batches of ``flush_size`` (and under 500 KB), every
    ``flush_interval`` seconds and on close; at most ``max_buffer`` wait while
    the endpoint is down (the oldest are dropped beyond that; with
    ``coordination.backend: redis`` it bounds the fleet's outbox stream, and
    new events are dropped beyond it). ``gzip``
    compresses each batch.
    """

    _section: ClassVar[str] = "services.analytics"

    url: str | None = None
    write_key: Secret | None = None
    flush_size: int = dataclasses.field(default=100, metadata={"min": 1})
    flush_interval: float = dataclasses.field(default=5.0, metadata={"min": 0})
    max_buffer: int = dataclasses.field(default=10_000, metadata={"min": 1})
    rate_limit: int = dataclasses.field(default=50, metadata={"min": 1, "reloadable": True})
    timeout: float = dataclasses.field(default=10.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=3, metadata={"min": 0, "reloadable": True})
    # The breaker opens after this many consecutive failed attempts, for
    # recovery_timeout seconds (then one probe goes through).
    failure_threshold: int = dataclasses.field(default=5, metadata={"min": 1, "reloadable": True})
    recovery_timeout: float = dataclasses.field(
        default=30.0, metadata={"min": 0, "reloadable": True}
    )
    # Send each batch gzip-compressed (Content-Encoding: gzip), as Segment accepts.
    gzip: bool = False

    def validate(self) -> None:
        if self.url:
            problem = url_problem(self.url, ("http", "https"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.url)!r} {problem}", key="url")


@dataclasses.dataclass(frozen=True, repr=False)
class NotificationsConfig(ConfigSection):
    """Slack-style and generic JSON webhooks; each off when empty.

    Webhook URLs carry their credential in the path, so they are secrets.
    ``webhook_secret`` (``whsec_<base64>``) signs every message to
    ``webhook_url`` per the Standard Webhooks spec; it is required with it.
    """

    _section: ClassVar[str] = "services.notifications"

    slack_webhook_url: Secret | None = None
    webhook_url: Secret | None = None
    # Signs what goes to webhook_url (Standard Webhooks); required with it.
    webhook_secret: Secret | None = None
    rate_limit: int = dataclasses.field(default=10, metadata={"min": 1, "reloadable": True})
    timeout: float = dataclasses.field(default=10.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=3, metadata={"min": 0, "reloadable": True})
    # The breaker opens after this many consecutive failed attempts, for
    # recovery_timeout seconds (then one probe goes through).
    failure_threshold: int = dataclasses.field(default=5, metadata={"min": 1, "reloadable": True})
    recovery_timeout: float = dataclasses.field(
        default=30.0, metadata={"min": 0, "reloadable": True}
    )

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
    """External HTTP services: the shared session and each service.

    ``plugins`` starts services other packages provide (the entry point group
    ``ads_infra.services``, docs/plugins.md): each key is a plugin's name,
    its value that plugin's own settings, validated by the plugin. An
    installed service plugin runs only when it is named here.
    """

    _section: ClassVar[str] = "services"

    http: HttpConfig = dataclasses.field(default_factory=HttpConfig)
    ai: AIProviderConfig = dataclasses.field(default_factory=AIProviderConfig)
    analytics: AnalyticsConfig = dataclasses.field(default_factory=AnalyticsConfig)
    notifications: NotificationsConfig = dataclasses.field(default_factory=NotificationsConfig)
    plugins: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        checked = {}
        for name, options in self.plugins.items():
            try:
                if plugins.find(plugins.SERVICES_GROUP, name) is None:
                    error = plugins.unknown_name(plugins.SERVICES_GROUP, name, ())
                    raise ConfigurationError(error.reason, key=f"plugins.{name}")
                checked[name] = plugins.validated_options(
                    plugins.SERVICES_GROUP, name, options or {}, key=f"plugins.{name}"
                )
            except PluginError as exc:
                raise PluginError(exc.reason, key=f"plugins.{name}") from exc.__cause__
        self._normalize(plugins=checked)


@dataclasses.dataclass(frozen=True, repr=False)
class CoordinationConfig(ConfigSection):
    """Fleet-wide guarantees (docs/coordination.md): ``local`` or one shared Redis.

    ``redis`` shares rate limits, breaker state, ``get_or_set`` single flight
    and two-level invalidation through ``redis_url`` (unset: the cache's
    Redis URL, else the default local server). While that Redis is away each
    process paces at ``rate_limit / expected_processes``. Keys start with
    ``key_prefix``; ``lock_ttl`` bounds a crashed single-flight owner's lock.
    Analytics events go through a Redis Stream outbox; entries a process
    left pending for ``outbox_claim_after`` seconds are sent by another.
    """

    _section: ClassVar[str] = "coordination"

    backend: CoordinationBackend = CoordinationBackend.LOCAL
    redis_url: str | None = None
    key_prefix: str = "ads:coord"
    expected_processes: int = dataclasses.field(default=1, metadata={"min": 1})
    lock_ttl: float = dataclasses.field(default=10.0, metadata={"min": 0.1})
    breaker_sync_interval: float = dataclasses.field(default=0.2, metadata={"min": 0.01})
    socket_timeout: float = dataclasses.field(default=0.5, metadata={"min": 0.01})
    retry_interval: float = dataclasses.field(default=1.0, metadata={"min": 0.01})
    # An analytics outbox entry pending this long on one process (dead, or stuck) is
    # taken over by another; longer than one batch's send with its retries.
    outbox_claim_after: float = dataclasses.field(default=60.0, metadata={"min": 0.1})

    def validate(self) -> None:
        if not self.key_prefix.strip():
            raise ConfigurationError("must not be empty, e.g. 'ads:coord'", key="key_prefix")
        if self.redis_url:
            problem = url_problem(self.redis_url, ("redis", "rediss", "unix"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.redis_url)!r} {problem}", key="redis_url")


# The standard library's level names, least verbose last.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclasses.dataclass(frozen=True, repr=False)
class LoggingConfig(ConfigSection):
    """The level of the ``ads_infra`` loggers.

    ``level`` unset leaves them to the host application's logging
    configuration; set, it is applied when the container starts and on every
    reload (set back to unset, the loggers follow the host's again).
    """

    _section: ClassVar[str] = "logging"

    level: str | None = dataclasses.field(default=None, metadata={"reloadable": True})

    def validate(self) -> None:
        if self.level is None:
            return
        level = self.level.strip().upper()
        if level not in LOG_LEVELS:
            raise ConfigurationError(
                f"unknown value {self.level[:40]!r}; allowed: {', '.join(LOG_LEVELS)}, or null",
                key="level",
            )
        self._normalize(level=level)


def _nameserver_ok(entry: str) -> bool:
    """``entry`` is an IP address, ``IPv4:port`` or ``[IPv6]:port`` (what the resolver takes)."""
    host, port = entry, "53"
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return port.isdigit() and 0 < int(port) < 65536


def _pair(entry: str, key: str, example: str) -> tuple[str, str]:
    """``"NAME=VALUE"`` split in two; a ConfigurationError naming ``key`` otherwise."""
    name, sep, value = entry.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ConfigurationError(f"{entry!r} is not NAME=VALUE, e.g. {example!r}", key=key)
    return name.strip(), value.strip()


@dataclasses.dataclass(frozen=True, repr=False)
class DiscoveryConfig(ConfigSection):
    """Service discovery (docs/discovery.md): ``static``, ``dns`` (SRV) or ``etcd``.

    ``static`` is the services' own base URLs, unchanged. With ``dns`` or
    ``etcd``, each ``resolve`` entry ``UPSTREAM=SERVICE`` (``ai.openai=ai``)
    sends that upstream's calls to the live instances of ``SERVICE``, spread by
    ``balancing``, each instance behind a breaker of its own. ``etcd``: the
    instances are the keys under ``key_prefix`` + SERVICE + ``/``, each held by
    its process's lease of ``ttl`` seconds; ``register`` entries
    ``SERVICE=URL`` are this process's own instances, kept alive while it runs.
    ``config_prefix`` (etcd only; empty: off) holds configuration keys, one
    dotted setting a key, laid over the file and followed while the layer runs
    (docs/reload.md).
    ``dns``: SRV records named by ``dns_srv_name`` (``{service}`` replaced),
    re-resolved when their TTL runs out, from ``dns_nameservers`` (IP
    addresses, ``:port`` when not 53; empty: the system's resolver).
    """

    _section: ClassVar[str] = "discovery"

    backend: DiscoveryBackend = DiscoveryBackend.STATIC
    # Comma-separated etcd endpoints, tried in turn.
    etcd_url: str = DEFAULT_ETCD_URL
    key_prefix: str = "/ads-infra/services/"
    config_prefix: str = "/ads-infra/config/"
    ttl: int = dataclasses.field(default=10, metadata={"min": 2})
    register: list[str] = dataclasses.field(default_factory=list)
    resolve: list[str] = dataclasses.field(default_factory=list)
    balancing: LoadBalancing = LoadBalancing.ROUND_ROBIN
    # Seconds for one etcd or DNS request; also the first wait before reconnecting.
    timeout: float = dataclasses.field(default=2.0, metadata={"min": 0.01})
    dns_srv_name: str = "{service}"
    dns_nameservers: list[str] = dataclasses.field(default_factory=list)
    dns_scheme: str = "http"
    # Bounds on how long a DNS answer is kept, whatever its TTL says.
    dns_min_ttl: float = dataclasses.field(default=1.0, metadata={"min": 0.1})
    dns_max_ttl: float = dataclasses.field(default=300.0, metadata={"min": 0.1})

    @property
    def etcd_endpoints(self) -> list[str]:
        return [url.strip() for url in self.etcd_url.split(",") if url.strip()]

    def _check_config_prefix(self) -> None:
        prefix = self.config_prefix
        if not prefix:
            return
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ConfigurationError(
                f"{prefix!r} must start and end with '/', e.g. '/ads-infra/config/' "
                "(empty: no configuration from etcd)",
                key="config_prefix",
            )
        if prefix.startswith(self.key_prefix) or self.key_prefix.startswith(prefix):
            raise ConfigurationError(
                f"{prefix!r} overlaps key_prefix {self.key_prefix!r}: the services' "
                "instances would be read as settings; choose prefixes apart",
                key="config_prefix",
            )

    @property
    def registrations(self) -> list[tuple[str, str]]:
        """``register`` as (service, URL) pairs."""
        return [_pair(e, "register", "ai=http://10.0.0.5:8080") for e in self.register]

    @property
    def resolved(self) -> dict[str, str]:
        """``resolve`` as {upstream: service}."""
        return dict(_pair(e, "resolve", "ai.openai=ai") for e in self.resolve)

    def validate(self) -> None:
        if not self.etcd_endpoints:
            raise ConfigurationError(
                "needs at least one URL, e.g. http://127.0.0.1:2379", key="etcd_url"
            )
        for url in self.etcd_endpoints:
            problem = url_problem(url, ("http",))
            if problem:
                raise ConfigurationError(f"{mask_url(url)!r} {problem}", key="etcd_url")
        if not self.key_prefix.startswith("/") or not self.key_prefix.endswith("/"):
            raise ConfigurationError(
                f"{self.key_prefix!r} must start and end with '/', e.g. '/ads-infra/services/'",
                key="key_prefix",
            )
        self._check_config_prefix()
        for service, url in self.registrations:
            if "/" in service:
                raise ConfigurationError(
                    f"service name {service!r} may not hold '/'", key="register"
                )
            problem = url_problem(url, ("http", "https"))
            if problem:
                raise ConfigurationError(f"{service}: {mask_url(url)!r} {problem}", key="register")
        if self.register and self.backend is not DiscoveryBackend.ETCD:
            raise ConfigurationError(
                "registering needs backend etcd (DNS records are published by their own "
                "server): set discovery.backend: etcd or empty discovery.register",
                key="register",
            )
        _ = self.resolved
        if "{service}" not in self.dns_srv_name:
            raise ConfigurationError(
                f"{self.dns_srv_name!r} must contain {{service}}, "
                "e.g. '_{service}._tcp.example.com'",
                key="dns_srv_name",
            )
        for entry in self.dns_nameservers:
            if not _nameserver_ok(entry.strip()):
                raise ConfigurationError(
                    f"{entry!r} is not an IP address with an optional port, e.g. '10.0.0.2' "
                    "or '127.0.0.1:8600' or '[::1]:53'",
                    key="dns_nameservers",
                )
        if self.dns_scheme not in ("http", "https"):
            raise ConfigurationError(
                f"{self.dns_scheme!r}: expected http or https", key="dns_scheme"
            )
        if self.dns_min_ttl > self.dns_max_ttl:
            raise ConfigurationError("must be <= dns_max_ttl", key="dns_min_ttl")


@dataclasses.dataclass(frozen=True, repr=False)
class Settings(ConfigSection):
    """The whole configuration file: one field per component section."""

    _section: ClassVar[str] = ""

    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    cache: CacheConfig = dataclasses.field(default_factory=CacheConfig)
    storage: StorageConfig = dataclasses.field(default_factory=StorageConfig)
    services: ServicesConfig = dataclasses.field(default_factory=ServicesConfig)
    coordination: CoordinationConfig = dataclasses.field(default_factory=CoordinationConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    discovery: DiscoveryConfig = dataclasses.field(default_factory=DiscoveryConfig)

    def validate(self) -> None:
        # The coordination Redis defaults to the cache's: one server to run.
        coord = self.coordination
        if coord.backend is CoordinationBackend.REDIS and not coord.redis_url:
            url = self.cache.redis_url or DEFAULT_REDIS_URL
            self._normalize(coordination=dataclasses.replace(coord, redis_url=url))
