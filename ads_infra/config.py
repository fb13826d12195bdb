"""Typed configuration: one dataclass per component, validation, secret masking.

Each section of ``config.yml`` has the field names of its dataclass as keys,
so ``CacheConfig.from_dict(section)`` is ``CacheConfig(**section)`` plus
checks: an unknown or mistyped key, a wrong type, a malformed URL or an unknown
backend raises :class:`~ads_infra.errors.ConfigurationError` naming the dotted
key, what is wrong with the value, and the file.

Values may be ``${ENV_NAME}`` or ``${ENV_NAME:default}`` (dependency-injector's
syntax). They are resolved *after* YAML parsing, so a password holding ``#`` or
``:`` cannot break the document, and strings from the environment are coerced
to the field's type (``"20"`` -> ``20``).

The dataclasses are validated by a small hand-written checker rather than
pydantic: the checks are few, the seed wants plain dataclasses
(``CacheConfig(**section)``), and direct construction must raise the same
:class:`ConfigurationError` as loading a file does.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import re
import types
import typing
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union
from urllib.parse import urlsplit

import yaml

from ads_infra.errors import ConfigurationError

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "AIProviderConfig",
    "AIProviderType",
    "AnalyticsConfig",
    "CacheConfig",
    "CacheType",
    "ConfigSection",
    "DatabaseConfig",
    "HttpConfig",
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

DEFAULT_CONFIG_FILE = "config.yml"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/ads.db"


# --- secrets -------------------------------------------------------------------


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or f-strings.

    Read the value with :meth:`get_secret_value` at the one place that sends it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __format__(self, spec: str) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


_SECRET_QUERY_KEYS = re.compile(r"(?i)(pass|secret|token|key|sig|credential)")


def mask_url(url: str | None) -> str:
    """Return ``url`` with its password and secret-looking query values masked.

    ``postgresql://u:pw@h/db?sslkey=x`` -> ``postgresql://u:***@h/db?sslkey=***``.
    Works on any scheme, including SQLAlchemy's ``dialect+driver://``.

    The user information is found without ``urlsplit``: a password holding an
    unencoded ``/``, ``?``, ``#`` or ``@`` (common in generated ones) ends
    urlsplit's host part early and would be printed whole. Here it runs to the
    last ``@`` before the query (or, failing that, in the whole rest), so such a
    password is masked too; an odd URL may lose some of its host, never a secret.
    """
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep:  # a message passes; a URL-like word with credentials does not
        return "<url with credentials>" if "@" in url and " " not in url else url
    before_query = rest.split("?", 1)[0]
    at = before_query.rfind("@")
    if at < 0:
        at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        if ":" in userinfo:  # a bare user name is no secret; a password is
            rest = f"{userinfo.split(':', 1)[0]}:***{rest[at:]}"
    head, qmark, query = rest.partition("?")
    if qmark:
        fragment = ""
        if "#" in query:
            query, fragment = query.split("#", 1)
            fragment = "#" + fragment
        query = "&".join(
            f"{pair.split('=', 1)[0]}=***"
            if "=" in pair and _SECRET_QUERY_KEYS.search(pair.split("=", 1)[0])
            else pair
            for pair in query.split("&")
        )
        rest = f"{head}?{query}{fragment}"
    return f"{scheme}://{rest}"


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


# --- validation machinery ------------------------------------------------------------

_Section = TypeVar("_Section", bound="ConfigSection")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _describe(value: object) -> str:
    if isinstance(value, Secret):
        return "a secret"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Return ``value`` converted to ``hint`` or raise ConfigurationError for ``name``."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if (value is None or value == "") and type(None) in typing.get_args(hint):
            return None
        errors: list[ConfigurationError] = []
        for option in options:
            try:
                return _coerce(name, option, value)
            except ConfigurationError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigurationError(f"expected a list, got {_describe(value)}", key=name)
        return [_coerce(f"{name}[{i}]", item_hint, item) for i, item in enumerate(value)]
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, ConfigSection):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"expected a mapping, got {_describe(value)}", key=name)
        try:
            return hint.from_dict(value, prefix="")
        except ConfigurationError as exc:
            raise ConfigurationError(exc.reason, key=f"{name}.{exc.key}") from None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        allowed = sorted({member.value for member in hint})
        try:
            return hint(value)
        except ValueError:
            raise ConfigurationError(
                f"unknown value {_describe(value)}; allowed: {', '.join(map(str, allowed))}",
                key=name,
            ) from None
    if hint is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise ConfigurationError("expected a string", key=name)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigurationError(f"expected true or false, got {_describe(value)}", key=name)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigurationError(f"expected a whole number, got {_describe(value)}", key=name)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigurationError(f"expected a number, got {_describe(value)}", key=name)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigurationError(f"expected a string, got {_describe(value)}", key=name)
    raise TypeError(f"unsupported config field type {hint!r} for {name}")  # programming error


_UNENCODED_USERINFO = (
    "cannot be split into user, password and host: a password holding '/', '?' or '#' "
    "must be percent-encoded (urllib.parse.quote(password, safe=''))"
)


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Return why ``url`` is not a usable URL with one of ``schemes``, or None."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    scheme = parts.scheme.split("+", 1)[0]
    if not parts.scheme or "://" not in url:
        return f"is not a URL; expected {' or '.join(s + '://...' for s in schemes)}"
    if scheme not in schemes:
        return f"has scheme {parts.scheme!r}; expected one of {', '.join(schemes)}"
    if parts.netloc and "@" in parts.path + parts.fragment:
        return _UNENCODED_USERINFO
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return _UNENCODED_USERINFO if "@" in url else "has a malformed port"
    return None


@dataclasses.dataclass
class ConfigSection:
    """Base of every config dataclass: coerces and validates in ``__post_init__``.

    Subclasses add cross-field checks in :meth:`validate` and declare a lower
    bound for numbers with ``field(metadata={"min": 0})``.
    """

    _section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = _coerce(field.name, hints[field.name], getattr(self, field.name))
            minimum = field.metadata.get("min")
            if minimum is not None and value is not None and value < minimum:
                raise ConfigurationError(f"must be >= {minimum}, got {value}", key=field.name)
            object.__setattr__(self, field.name, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; raise ConfigurationError(key=field name)."""

    @classmethod
    def from_dict(
        cls: type[_Section],
        data: Mapping[str, Any] | None,
        *,
        source: str | None = None,
        prefix: str | None = None,
    ) -> _Section:
        """Build from a config section, rejecting unknown keys.

        ``prefix`` (``"cache"``) and ``source`` (the file) go into the error.
        """
        prefix = prefix if prefix is not None else cls._section
        data = dict(data or {})
        known = {field.name for field in dataclasses.fields(cls) if field.init}
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigurationError(
                    f"unknown key{hint} (known keys: {', '.join(sorted(known))})",
                    key=f"{prefix}.{key}" if prefix else str(key),
                    source=source,
                )
        try:
            return cls(**data)
        except ConfigurationError as exc:
            key = f"{prefix}.{exc.key}" if prefix and exc.key else exc.key or prefix
            raise ConfigurationError(exc.reason, key=key, source=source) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain values: enums as their value, secrets kept as :class:`Secret`."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, ConfigSection):
                value = value.to_dict()
            elif isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, list):
                value = list(value)
            out[field.name] = value
        return out

    def masked(self) -> dict[str, Any]:
        """Like :meth:`to_dict`, safe to print: secrets and URL passwords masked."""
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if isinstance(getattr(self, key), ConfigSection):
                value = getattr(self, key).masked()
            elif isinstance(value, Secret):
                value = "********" if value else ""
            elif isinstance(value, str) and "://" in value:
                value = mask_url(value)
            out[key] = value
        return out

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"{type(self).__name__}({body})"


# --- component sections ------------------------------------------------------------


@dataclasses.dataclass(repr=False)
class DatabaseConfig(ConfigSection):
    """Database engine and pool settings (the seed's fields).

    ``max_retries`` is 5, not the seed's 100: with exponential backoff, 100
    retries would hang a caller for hours on a database that is down. Delays
    grow from ``retry_delay`` with full jitter and are capped at
    ``retry_max_delay`` seconds.

    ``postgresql://`` and ``sqlite://`` URLs are upgraded to their async
    drivers (asyncpg, aiosqlite).
    """

    _section: ClassVar[str] = "database"

    url: str = DEFAULT_DATABASE_URL
    pool_size: int = dataclasses.field(default=20, metadata={"min": 1})
    max_overflow: int = dataclasses.field(default=30, metadata={"min": 0})
    pool_pre_ping: bool = True
    pool_recycle: int = 3600
    pool_timeout: int = dataclasses.field(default=30, metadata={"min": 0})
    echo: bool = False
    max_retries: int = dataclasses.field(default=5, metadata={"min": 0})
    retry_delay: float = dataclasses.field(default=1.0, metadata={"min": 0})
    retry_max_delay: float = dataclasses.field(default=10.0, metadata={"min": 0})
    statement_timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})

    _ASYNC_DRIVERS: ClassVar[dict[str, str]] = {
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
    }

    def validate(self) -> None:
        problem = _url_problem(self.url, ("postgresql", "postgres", "sqlite"))
        if problem:
            raise ConfigurationError(
                f"{mask_url(self.url)!r} {problem}; use e.g. "
                "postgresql+asyncpg://user@host:5432/db or sqlite+aiosqlite:///./var/ads.db",
                key="url",
            )
        scheme, rest = self.url.split("://", 1)
        if "+" not in scheme:
            self.url = f"{self._ASYNC_DRIVERS[scheme]}://{rest}"
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


@dataclasses.dataclass(repr=False)
class CacheConfig(ConfigSection):
    """Cache backend settings (the seed's fields, plus namespace, codec and fallback).

    ``cache_type`` defaults to ``memory`` rather than the seed's ``redis``: a
    bare ``CacheManager()`` must work with no server (the seed's own unit test
    does exactly that); the container picks Redis from ADS_CACHE_TYPE. With
    ``redis``/``redis_cluster`` and no ``redis_url``, the URL defaults to
    ``redis://127.0.0.1:6379/0``.

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
            problem = _url_problem(self.redis_url, ("redis", "rediss", "unix"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.redis_url)!r} {problem}", key="redis_url")
        if self.cache_type is not CacheType.MEMORY and not self.redis_url:
            self.redis_url = "redis://127.0.0.1:6379/0"
        self.fallback_probe_max_interval = max(
            self.fallback_probe_max_interval, self.fallback_probe_interval
        )


DEFAULT_ALLOWED_EXTENSIONS = [
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg",
    ".mp4", ".webm", ".mov",
    ".pdf", ".txt", ".csv", ".json", ".html",
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


@dataclasses.dataclass(repr=False)
class StorageConfig(ConfigSection):
    """File storage settings (the seed's fields, plus S3 and encryption)."""

    _section: ClassVar[str] = "storage"

    base_path: str = "storage"
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
        self.allowed_extensions = [
            ext.lower() if ext.startswith(".") else f".{ext.lower()}"
            for ext in self.allowed_extensions
        ]
        if self.s3_endpoint_url:
            problem = _url_problem(self.s3_endpoint_url, ("http", "https"))
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


@dataclasses.dataclass(repr=False)
class HttpConfig(ConfigSection):
    """The one aiohttp session that every external service shares."""

    _section: ClassVar[str] = "services.http"

    total_timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    connect_timeout: float = dataclasses.field(default=5.0, metadata={"min": 0})
    connector_limit: int = dataclasses.field(default=100, metadata={"min": 0})
    connector_limit_per_host: int = dataclasses.field(default=20, metadata={"min": 0})


@dataclasses.dataclass(repr=False)
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
            problem = _url_problem(self.base_url, ("http", "https"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.base_url)!r} {problem}", key="base_url")
        if self.provider is AIProviderType.OPENAI and not self.base_url:
            self.base_url = "https://api.openai.com"


@dataclasses.dataclass(repr=False)
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
            problem = _url_problem(self.url, ("http", "https"))
            if problem:
                raise ConfigurationError(f"{mask_url(self.url)!r} {problem}", key="url")


@dataclasses.dataclass(repr=False)
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
                problem = _url_problem(secret.get_secret_value(), ("http", "https"))
                if problem:
                    # The URL itself is the secret: describe the problem only.
                    raise ConfigurationError(f"the webhook URL {problem}", key=key)


@dataclasses.dataclass(repr=False)
class ServicesConfig(ConfigSection):
    """External HTTP services: the shared session and each service."""

    _section: ClassVar[str] = "services"

    http: HttpConfig = dataclasses.field(default_factory=HttpConfig)
    ai: AIProviderConfig = dataclasses.field(default_factory=AIProviderConfig)
    analytics: AnalyticsConfig = dataclasses.field(default_factory=AnalyticsConfig)
    notifications: NotificationsConfig = dataclasses.field(default_factory=NotificationsConfig)


@dataclasses.dataclass(repr=False)
class Settings(ConfigSection):
    """The whole configuration file: one field per component section."""

    _section: ClassVar[str] = ""

    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    cache: CacheConfig = dataclasses.field(default_factory=CacheConfig)
    storage: StorageConfig = dataclasses.field(default_factory=StorageConfig)
    services: ServicesConfig = dataclasses.field(default_factory=ServicesConfig)


# --- loading ---------------------------------------------------------------------------

_ENV_MARKER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")


def _interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Resolve ``${NAME}`` / ``${NAME:default}`` in every string of a parsed document.

    An unset variable with no default becomes None (so an optional key is off).
    """
    if isinstance(value, dict):
        return {k: _interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _ENV_MARKER.fullmatch(value)
    if whole:
        resolved = environ.get(whole["name"], whole["default"])
        return None if resolved is None else resolved
    return _ENV_MARKER.sub(lambda m: environ.get(m["name"], m["default"] or ""), value)


def merge_sections(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` merged into ``base`` recursively (mappings merge, other values replace)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge_sections(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_file_path(config_file: str | os.PathLike[str] | None = None) -> Path:
    """The file to load: the argument, else ADS_INFRA_CONFIG, else ./config.yml."""
    return Path(config_file or os.environ.get("ADS_INFRA_CONFIG") or DEFAULT_CONFIG_FILE)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read, interpolate and validate a configuration file.

    ``overrides`` (``{"cache": {"cache_type": "redis"}}``) are merged over the
    file before validation. Raises ConfigurationError naming key and file.
    """
    path = config_file_path(config_file)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            "configuration file not found; create it (see config.yml in the ads-infra "
            "repository) or point ADS_INFRA_CONFIG at one",
            source=source,
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read: {exc.strerror}", source=source) from None
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"is not valid YAML{where}", source=source) from None
    if not isinstance(document, dict):
        raise ConfigurationError("top level must be a mapping of sections", source=source)
    document = _interpolate(document, os.environ if environ is None else environ)
    if overrides:
        document = merge_sections(document, overrides)
    return Settings.from_dict(document, source=source, prefix="")
