"""The configuration file, generated: every key, its default, the variable that sets it.

The defaults come from the sections in :mod:`ads_infra.core.settings` (the
only place they are written); this module adds what a file needs on top:
which ``ADS_*`` variable sets a key (:data:`ENVIRONMENT`) and a comment
(:data:`COMMENTS`). :func:`render_config` writes it out. The text is

- what ``ads-infra config init`` writes (a starter file to edit),
- the packaged defaults the loader falls back to when no file is found, so a
  run with no file behaves exactly as one with this file, and
- the repository's ``config.yml`` (a test checks they are the same text).
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any

import yaml

from ads_infra.core.redact import Secret
from ads_infra.core.section import ConfigSection
from ads_infra.core.settings import Settings

__all__ = ["COMMENTS", "ENVIRONMENT", "render_config"]

# dotted key -> the environment variable that sets it. Secrets are set only here.
ENVIRONMENT: dict[str, str] = {
    "database.url": "ADS_DATABASE_URL",
    "database.pgbouncer": "ADS_DATABASE_PGBOUNCER",
    "database.sslmode": "ADS_DATABASE_SSLMODE",
    "database.sslrootcert": "ADS_DATABASE_SSLROOTCERT",
    "database.sslcert": "ADS_DATABASE_SSLCERT",
    "database.sslkey": "ADS_DATABASE_SSLKEY",
    "database.replica_urls": "ADS_DATABASE_REPLICA_URLS",
    "cache.cache_type": "ADS_CACHE_TYPE",
    "cache.redis_url": "ADS_REDIS_URL",
    "storage.storage_type": "ADS_STORAGE_TYPE",
    "storage.base_path": "ADS_STORAGE_PATH",
    "storage.encryption_key": "ADS_STORAGE_ENCRYPTION_KEY",
    "storage.s3_bucket": "ADS_S3_BUCKET",
    "storage.s3_endpoint_url": "ADS_S3_ENDPOINT_URL",
    "storage.s3_region": "AWS_REGION",
    "storage.s3_access_key_id": "AWS_ACCESS_KEY_ID",
    "storage.s3_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "services.ai.provider": "ADS_AI_PROVIDER",
    "services.ai.base_url": "ADS_AI_BASE_URL",
    "services.ai.api_key": "ADS_AI_API_KEY",
    "services.analytics.url": "ADS_ANALYTICS_URL",
    "services.analytics.write_key": "ADS_ANALYTICS_WRITE_KEY",
    "services.notifications.slack_webhook_url": "ADS_SLACK_WEBHOOK_URL",
    "services.notifications.webhook_url": "ADS_WEBHOOK_URL",
    "services.notifications.webhook_secret": "ADS_WEBHOOK_SECRET",
    "coordination.backend": "ADS_COORDINATION_BACKEND",
    "coordination.redis_url": "ADS_COORDINATION_URL",
    "discovery.backend": "ADS_DISCOVERY_BACKEND",
    "discovery.etcd_url": "ADS_ETCD_URL",
}

# dotted key (a section or a value) -> its comment in the file.
COMMENTS: dict[str, str] = {
    "database.url": "any SQLAlchemy async URL; postgresql:// means asyncpg",
    "database.max_retries": "a unit of work is run again at most this often",
    "database.pool_size": "at most pool_size + max_overflow connections",
    "database.max_overflow": "  per process: ~9 processes fill a default server",
    "database.pool_timeout": "seconds to wait for a free connection, then fail",
    "database.statement_timeout": "seconds; per transaction behind PgBouncer",
    "database.pgbouncer": "true behind PgBouncer (transaction pooling)",
    "database.sslmode": "disable|allow|prefer|require|verify-ca|verify-full",
    "database.sslrootcert": 'CA file (verify-ca/verify-full); or "system"',
    "database.sslcert": "client certificate (needs require or stricter)",
    "database.replica_urls": "comma-separated read replicas",
    "database.max_replica_lag": "seconds; a replica further behind is skipped",
    "database.replica_check_interval": "seconds between replica lag checks",
    "database.auto_migrate": "sqlite (schema made on first use) | always | never",
    "cache.cache_type": "memory | redis | redis_cluster | a plugin",
    "cache.options": "a plugin backend's settings (docs/plugins.md)",
    "cache.redis_url": "unset: redis://127.0.0.1:6379/0",
    "cache.namespace": 'every key is "ads:<key>"',
    "cache.default_ttl": "seconds; 0 = no expiry",
    "cache.max_size": "memory entries (LRU beyond)",
    "cache.serializer": "json | msgpack | pickle (trusted writers only)",
    "cache.compression_threshold": "bytes; larger payloads are zlib-compressed",
    "cache.fallback_enabled": "Redis down -> serve from memory",
    "cache.two_level": "memory in front of Redis for local_ttl s",
    "cache.max_value_bytes": "16 MiB: a larger value (decompressed) is refused on read",
    "storage.storage_type": "local | s3 | a plugin (ads-infra plugins)",
    "storage.options": "a plugin backend's settings (docs/plugins.md)",
    "storage.compression_enabled": "null: gzip text on local, not on s3 (docs/storage.md)",
    "storage.max_file_size": "100 MiB",
    "storage.multipart_threshold": "8 MiB: larger files go up in parts",
    "storage.presign_expiry": "seconds a presigned GET URL lives",
    "storage.temp_max_age": "cleanup_temp_files() default, seconds",
    "storage.s3_create_only": "verify | emulate | trust: If-None-Match support",
    "storage.local_metadata": "auto (xattr, else ~meta file) | sidecar",
    "services.http": "the one aiohttp session all services share",
    "services.ai.provider": "offline | openai (any OpenAI-compatible API)",
    "services.ai.rate_limit": "requests per second, paced",
    "services.ai.limit_parameter": "auto | max_tokens | max_completion_tokens",
    "services.ai.deadline": "seconds per generation, retries included",
    "services.analytics.gzip": "gzip each batch (Content-Encoding: gzip)",
    "services.notifications.webhook_secret": "whsec_<base64>: signs webhook_url's messages",
    "services.plugins": "plugin services to run: name -> its settings",
    "services.analytics": "Segment-style /v1/batch; off when url is empty",
    "services.notifications": "webhook URLs are secrets: environment only",
    "coordination": "fleet-wide limits, breakers, locks (docs/coordination.md)",
    "coordination.backend": "local (per process) | redis (fleet-wide)",
    "coordination.redis_url": "unset: the cache's redis_url, else the default",
    "coordination.expected_processes": "Redis away: each paces at rate / this",
    "coordination.lock_ttl": "seconds a get_or_set lock outlives a crash",
    "coordination.breaker_sync_interval": "seconds between breaker state reads",
    "coordination.outbox_claim_after": "seconds before a dead process's analytics are taken over",
    "logging": "reloadable keys (docs/reload.md) apply on SIGHUP",
    "logging.level": "DEBUG..CRITICAL for ads_infra's loggers; null: the host's",
    "discovery": "where services' URLs come from (docs/discovery.md)",
    "discovery.backend": "static (base URLs) | dns (SRV) | etcd",
    "discovery.etcd_url": "comma-separated etcd endpoints",
    "discovery.config_prefix": "settings laid over this file (etcd; empty: off)",
    "discovery.ttl": "seconds a registration outlives its process",
    "discovery.register": "SERVICE=URL: this process's instances (etcd)",
    "discovery.resolve": "UPSTREAM=SERVICE, e.g. ai.openai=ai",
    "discovery.balancing": "round_robin | least_outstanding",
    "discovery.dns_srv_name": "SRV name, e.g. _{service}._tcp.example.com",
    "discovery.dns_nameservers": "IP or IP:port; empty: the system's",
}

HEADER = """\
# ads-infra configuration. Each section's keys are the fields of its config
# dataclass (ads_infra/core/settings.py); an unknown key is an error. Every
# value here is that dataclass's default. ${NAME:default} reads the environment
# variable NAME; secrets come only from there.
# Written by `ads-infra config init`; edit what you need, delete what you don't.
"""

_COMMENT_COLUMN = 47


def _scalar(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Secret):
        value = value.get_secret_value()
    if isinstance(value, list):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return yaml.safe_dump(value, default_style=None).removesuffix("\n...\n").strip()


def _env_marker(variable: str, value: Any) -> str:
    if value is None or isinstance(value, Secret):
        return f"${{{variable}:}}"  # secrets have no default, and None is "unset"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, list):
        value = ",".join(str(item) for item in value)  # the variable is comma-separated
    return f"${{{variable}:{value}}}"


def _line(indent: int, key: str, value: str, comment: str | None) -> str:
    text = f"{'  ' * indent}{key}:{' ' + value if value else ''}"
    if comment:
        text = f"{text.ljust(_COMMENT_COLUMN - 1)} # {comment}"
    return text


def _section(section: ConfigSection, prefix: str, indent: int) -> list[str]:
    lines: list[str] = []
    hints = typing.get_type_hints(type(section))
    for field in dataclasses.fields(section):
        if not field.init:
            continue
        key = f"{prefix}.{field.name}" if prefix else field.name
        value = getattr(section, field.name)
        if isinstance(value, ConfigSection):
            lines.append(_line(indent, field.name, "", COMMENTS.get(key)))
            lines.extend(_section(value, key, indent + 1))
            continue
        variable = ENVIRONMENT.get(key)
        if variable is not None:
            text = _env_marker(variable, value)
        elif value is None or (hints[field.name] is Secret and not value):
            text = "null"
        else:
            text = _scalar(value)
        lines.append(_line(indent, field.name, text, COMMENTS.get(key)))
    return lines


def render_config(settings: Settings | None = None) -> str:
    """The configuration file for ``settings`` (default: every default), with its comments."""
    settings = settings or Settings()
    blocks = []
    for field in dataclasses.fields(settings):
        section = getattr(settings, field.name)
        block = [_line(0, field.name, "", COMMENTS.get(field.name))]
        block.extend(_section(section, field.name, 1))
        blocks.append("\n".join(block))
    return HEADER + "\n" + "\n\n".join(blocks) + "\n"
