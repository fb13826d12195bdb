"""One exception hierarchy for the whole infrastructure layer.

A caller catches a family (``except StorageError``) or the root
(``except InfrastructureError``). Every message says what failed and what to
do about it, and never holds a secret: messages are built from masked values
only (see :func:`ads_infra.core.redact.mask_url`).
"""

from __future__ import annotations

from ads_infra.domain import errors as _domain_errors


class InfrastructureError(Exception):
    """Root of every error raised by ads-infra."""


# --- configuration -----------------------------------------------------------


class ConfigurationError(InfrastructureError, ValueError):
    """A configuration value is missing, mistyped or unknown.

    ``key`` is the dotted path of the offending key (``cache.cache_type``),
    ``source`` the file it came from, and ``origin`` the environment variable
    that set it (``ADS_CACHE_TYPE=redis_clustr``), when it came from one.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        source: str | None = None,
        origin: str | None = None,
    ):
        self.key = key
        self.source = source
        self.origin = origin
        self.reason = message
        if origin:  # the value came from an environment variable: name it, not the file
            super().__init__(f"{origin} ({key}): {message}" if key else f"{origin}: {message}")
            return
        prefix = f"{key}: " if key else ""
        suffix = f" (in {source})" if source else ""
        super().__init__(f"{prefix}{message}{suffix}")

    def at(
        self, key: str | None, *, source: str | None = None, origin: str | None = None
    ) -> ConfigurationError:
        """The same error reported at ``key`` (a section's prefix added, the file or the
        variable named); a :class:`PluginError` stays one, to be caught as such."""
        kind = PluginError if isinstance(self, PluginError) else ConfigurationError
        return kind(self.reason, key=key, source=source, origin=origin)


class RestartRequiredError(ConfigurationError):
    """A configuration reload changes a key that only a restart can apply.

    ``keys`` are the dotted keys refused (``cache.cache_type``); the
    configuration in force stays as it was.
    """

    def __init__(self, message: str, *, keys: tuple[str, ...], source: str | None = None):
        self.keys = keys
        super().__init__(message, key=", ".join(keys), source=source)


class PluginError(ConfigurationError):
    """An installed plugin cannot be used: its import fails, it is declared twice, or
    the object its entry point names does not implement the interface of its group.

    The message names the entry point and the distribution that declares it.
    """


# --- database ----------------------------------------------------------------


class DatabaseError(InfrastructureError):
    """A database operation failed."""


class TransientDatabaseError(DatabaseError):
    """A database error that may succeed on retry (disconnect, serialization
    failure, deadlock, server shutting down, too many connections, SQLite lock).
    Raised once the retry budget is spent."""


class PoolExhaustedError(TransientDatabaseError):
    """No pooled connection became free within ``pool_timeout``. Not retried: the pool is
    busy, not broken, and waiting again would only double the caller's wait."""


class CommitOutcomeUnknownError(DatabaseError):
    """The connection failed while committing: the unit may or may not have
    been applied. Never retried automatically (that could apply it twice);
    check, then repeat it if it is missing."""


class PermanentDatabaseError(DatabaseError):
    """A database error that retrying cannot fix (constraint violation,
    programming error, bad SQL)."""


class IntegrityViolationError(PermanentDatabaseError):
    """A constraint (unique, foreign key, check, not null) rejected the write."""


# --- domain lookups ----------------------------------------------------------


class NotFoundError(InfrastructureError, _domain_errors.NotFoundError):
    """The requested entity does not exist for this user.

    Also a :class:`ads_infra.domain.errors.NotFoundError` (and a LookupError),
    so domain code catches it without importing the infrastructure.
    Signature: ``NotFoundError(entity, entity_id, *, user_id=None)``.
    """


# The domain's own errors, re-exported so callers find every error here.
DomainError = _domain_errors.DomainError
ValidationError = _domain_errors.ValidationError


class SchemaNotMigratedError(PermanentDatabaseError):
    """The database has no ads-infra tables (or an older schema): run ``ads-infra db upgrade``."""


# --- cache -------------------------------------------------------------------


class CacheError(InfrastructureError):
    """A cache backend failed (connection, timeout, serialization)."""


class CacheSerializationError(CacheError):
    """A value could not be serialized or a stored payload could not be read."""


# --- storage -----------------------------------------------------------------


class StorageError(InfrastructureError):
    """A storage backend failed."""


class StorageValidationError(StorageError, ValueError):
    """A file was refused before anything was stored."""


class FileTooLargeError(StorageValidationError):
    """The file exceeds ``max_file_size``."""


class FileTypeNotAllowedError(StorageValidationError):
    """The extension is not allowed, or the content does not match it."""


class InvalidFileNameError(StorageValidationError):
    """The file name cannot be stored safely."""


class StoredFileNotFoundError(StorageError, NotFoundError):
    """No stored file has this name."""

    def __init__(self, name: str):
        NotFoundError.__init__(self, "file", name)


class IntegrityCheckError(StorageError):
    """A stored file failed its checksum or could not be decrypted."""


class ObjectExistsError(StorageError):
    """A create-only write found an object already stored under that name."""


# --- external services -------------------------------------------------------


class ExternalServiceError(InfrastructureError):
    """A call to an external HTTP service failed.

    ``status`` is the HTTP status when there was an answer. ``code``, ``type``
    and ``param`` are the provider's own error fields when its body carried
    them (OpenAI's ``error.code`` / ``error.type`` / ``error.param``, e.g.
    ``insufficient_quota``), so a caller can branch on them.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,  # OpenAI's field name, as its SDK exposes it
        param: str | None = None,
    ):
        self.service = service
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        super().__init__(message)


class RateLimitedError(ExternalServiceError):
    """The upstream answered 429 and retries were exhausted."""


class CircuitOpenError(ExternalServiceError):
    """The circuit breaker is open: no request was sent."""


class NoInstancesError(ExternalServiceError):
    """Service discovery knows no live instance of the service: nothing was sent."""


class DiscoveryError(InfrastructureError):
    """Service discovery failed: its backend (etcd, DNS) cannot be reached or refused."""


class UpstreamError(ExternalServiceError):
    """The upstream answered with an error status or an error object."""


class ServiceTimeoutError(ExternalServiceError, TimeoutError):
    """The upstream did not answer in time."""


class UnusableCompletionError(UpstreamError):
    """The AI provider answered, but with nothing usable: empty, refused or cut off.

    ``finish_reason`` is the provider's (``length``, ``content_filter`` ...).
    """

    def __init__(self, message: str, *, service: str | None = None, finish_reason: str | None):
        self.finish_reason = finish_reason
        super().__init__(message, service=service)


class WebhookVerificationError(InfrastructureError, ValueError):
    """A received webhook failed verification (signature, timestamp or replay): reject it."""


# --- what an HTTP host app answers -------------------------------------------

# Checked in order: the first class the error is an instance of decides.
_HTTP_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (FileTooLargeError, 413),
    (FileTypeNotAllowedError, 415),
    (_domain_errors.NotFoundError, 404),
    (_domain_errors.ValidationError, 422),
    (StorageValidationError, 422),
    (IntegrityViolationError, 409),
    (ObjectExistsError, 409),
    (ServiceTimeoutError, 504),
    (UpstreamError, 502),
    (RateLimitedError, 503),
    (CircuitOpenError, 503),
    (NoInstancesError, 503),
    (TransientDatabaseError, 503),
    (CommitOutcomeUnknownError, 503),
    (CacheError, 503),
)

_PUBLIC_DETAIL = {
    502: "an upstream service failed; try again later",
    503: "a backend is temporarily unavailable; try again shortly",
    504: "an upstream service did not answer in time; try again later",
    500: "internal error",
}


def http_status(exc: BaseException) -> int:
    """The HTTP status a host app should answer for ``exc``.

    Bad input is a 4xx (422, or 404, 409, 413, 415), never an outage: 503 is
    kept for what retrying later may fix (a database or cache that is away, an
    open circuit), 502/504 for an upstream's failure, 500 for everything else
    (a setup or programming error).
    """
    for cls, status in _HTTP_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def public_detail(exc: BaseException) -> str:
    """What a client may read about ``exc``: its message for a 4xx, a fixed phrase for a 5xx.

    A 5xx's own message may hold database or upstream text that is for the
    logs, not for the client.
    """
    status = http_status(exc)
    return str(exc) if status < 500 else _PUBLIC_DETAIL.get(status, _PUBLIC_DETAIL[500])
