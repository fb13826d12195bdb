"""What an upstream HTTP service is and how to reach it: ExternalServiceConfig.

Validated on construction (a bad base URL, timeout or health path is a
ConfigurationError naming the key), so a registered service is always one the
request path can use as is.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import ClassVar
from urllib.parse import urlsplit

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.redact import Secret, mask_url
from ads_infra.core.section import ConfigSection
from ads_infra.core.section import url_problem as _url_problem

__all__ = ["AuthScheme", "ExternalServiceConfig", "ServiceType"]


class ServiceType(enum.StrEnum):
    """What an external service is for (the seed's names)."""

    AI_PROVIDER = "ai_provider"
    ANALYTICS = "analytics"
    NOTIFICATION = "notification"
    WEBHOOK = "webhook"
    CUSTOM = "custom"


class AuthScheme(enum.StrEnum):
    """How ``api_key`` is sent: ``Authorization: Bearer <key>`` or HTTP Basic
    with the key as user name and no password (Segment's write keys)."""

    BEARER = "bearer"
    BASIC = "basic"
    NONE = "none"


@dataclasses.dataclass(frozen=True, repr=False)
class ExternalServiceConfig(ConfigSection):
    """One upstream HTTP API (the seed's fields, plus retry, timeout and breaker).

    ``rate_limit`` requests per ``rate_period`` seconds (None: unlimited) are
    *paced*, one every ``rate_period / rate_limit`` seconds, so the upstream
    never sees more than ``rate_limit`` in any window of ``rate_period``
    seconds, even under heavy concurrency (a bucket that allows a burst lets
    through up to twice the limit in one window).

    ``max_retries`` is 3, a few seconds at most with the default backoff; a
    ``Retry-After`` longer than ``retry_after_cap`` seconds is not waited for:
    the call fails at once with :class:`~ads_infra.errors.RateLimitedError`.
    The breaker opens after ``failure_threshold`` consecutive failed attempts
    (connection errors, timeouts, 429 and 5xx; other 4xx are the caller's
    fault and do not count) and lets one probe through after
    ``recovery_timeout`` seconds.

    ``retry_statuses`` are the 4xx answers retried besides every 5xx (default
    408 and 429). ``deadline`` bounds a whole call, waits included: a retry
    that could not start before it is not made, and each attempt's timeout is
    cut to what is left. ``x-should-retry: true/false`` from the upstream
    overrides the status, as OpenAI's SDK does.
    """

    _section: ClassVar[str] = "service"

    service_type: ServiceType = ServiceType.CUSTOM
    base_url: str = ""
    # Given as a str (the seed does) or a Secret; always held as a Secret.
    api_key: Secret | str | None = None
    rate_limit: int | None = dataclasses.field(default=100, metadata={"min": 1})
    rate_period: float = dataclasses.field(default=1.0, metadata={"min": 0})
    timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=3, metadata={"min": 0})
    retry_backoff: float = dataclasses.field(default=0.5, metadata={"min": 0})
    retry_max_delay: float = dataclasses.field(default=10.0, metadata={"min": 0})
    retry_after_cap: float = dataclasses.field(default=60.0, metadata={"min": 0})
    failure_threshold: int = dataclasses.field(default=5, metadata={"min": 1})
    recovery_timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    auth_scheme: AuthScheme = AuthScheme.BEARER
    health_path: str | None = None
    # 4xx statuses retried like a 5xx (429 and 408 by default; OpenAI adds 409).
    retry_statuses: list[int] = dataclasses.field(default_factory=lambda: [408, 429])
    # Seconds a whole call may take, attempts and waits included (None: no bound
    # beyond timeout x attempts and the Retry-After waits); no retry starts that
    # would end after it. Bounded by default: a caller never waits for minutes.
    deadline: float | None = dataclasses.field(default=120.0, metadata={"min": 0})
    # The largest response body read: an upstream answering with gigabytes is
    # cut off at this many bytes and the call fails, rather than fill memory.
    max_response_bytes: int = dataclasses.field(default=10 * 1024 * 1024, metadata={"min": 1})

    def validate(self) -> None:
        if not self.base_url:
            raise ConfigurationError(
                "is required: the service's root URL, e.g. https://api.openai.com",
                key="base_url",
            )
        problem = _url_problem(self.base_url, ("http", "https"))
        if problem:
            raise ConfigurationError(f"{mask_url(self.base_url)!r} {problem}", key="base_url")
        self._normalize(base_url=self.base_url.rstrip("/"))
        if self.rate_period <= 0:
            raise ConfigurationError("must be > 0 seconds", key="rate_period")
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ConfigurationError("must be a finite number of seconds > 0", key="timeout")
        bad = [s for s in self.retry_statuses if not 400 <= s < 500]
        if bad:
            raise ConfigurationError(
                f"{bad} are not 4xx statuses; list only 4xx answers to retry "
                "(every 5xx is retried already)",
                key="retry_statuses",
            )
        if self.deadline is not None and not (self.deadline > 0 and math.isfinite(self.deadline)):
            raise ConfigurationError(
                "must be a finite number of seconds > 0, or None", key="deadline"
            )
        if self.health_path is not None and not self.health_path.startswith("/"):
            raise ConfigurationError(
                f"{self.health_path!r} must start with '/' (it is appended to base_url)",
                key="health_path",
            )
        parts = urlsplit(self.base_url)
        has_key = isinstance(self.api_key, Secret) and bool(self.api_key.get_secret_value())
        if (
            (parts.username or parts.password)
            and has_key
            and self.auth_scheme is not AuthScheme.NONE
        ):
            # aiohttp refuses to send both, and only when the request is made.
            raise ConfigurationError(
                "holds credentials (user:password@) and api_key is set too; only one can be "
                "sent: remove the credentials from the URL, or the api_key",
                key="base_url",
            )
