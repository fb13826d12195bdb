"""The request path's decisions, each small and free of I/O, so each is tested alone.

- :func:`classify_status` and :func:`classify_exception`: what one attempt's
  outcome means: a success, the caller's mistake (permanent: not retried, not
  a breaker failure), or a failure of the upstream worth retrying;
- :class:`Failure`: one failed attempt, as the breaker, the metrics and the
  retry policy see it;
- :class:`RetryPolicy`: how many attempts a call gets and, after a failure,
  whether to send again and when (backoff with jitter, or exactly the
  upstream's ``Retry-After``).

Whether an attempt may be sent at all is the circuit breaker's call
(``breaker.py``); the arithmetic of backoff and ``Retry-After`` is in
``retry.py``. :meth:`ExternalServiceManager.request` composes them.
"""

from __future__ import annotations

import dataclasses
import enum

import aiohttp

from ads_infra.external_services.config import ExternalServiceConfig
from ads_infra.external_services.retry import IDEMPOTENT_METHODS, backoff_delay, parse_retry_after

__all__ = [
    "Failure",
    "GiveUp",
    "Retry",
    "RetryPolicy",
    "Verdict",
    "classify_exception",
    "classify_status",
    "failure_kind",
]

# Statuses whose Retry-After says when the upstream will take the request again.
RETRY_AFTER_STATUSES = (429, 503)


class Verdict(enum.Enum):
    """What an HTTP status means for the call."""

    SUCCESS = "success"  # 1xx-3xx: the answer
    PERMANENT = "permanent"  # 4xx but 429: the upstream is up and the request is wrong
    RETRYABLE = "retryable"  # 429 and 5xx: the upstream failed, or asks us to slow down


def classify_status(status: int) -> Verdict:
    if status < 400:
        return Verdict.SUCCESS
    if status != 429 and status < 500:
        return Verdict.PERMANENT
    return Verdict.RETRYABLE


def failure_kind(status: int) -> str:
    """The metrics' error kind of a retryable status."""
    return "rate_limited" if status == 429 else "server_error"


def classify_exception(exc: BaseException) -> str | None:
    """The error kind of an attempt that raised: "timeout", "connection", or None.

    None (a cancellation, or a bug) says nothing about the upstream: the
    caller lets it propagate. TimeoutError is tested first, as aiohttp's
    ServerTimeoutError is both a TimeoutError and a ClientError.
    """
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientError):
        return "connection"
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt of a retryable kind (timeout, connection, rate_limited, server_error)."""

    kind: str
    problem: str  # for messages and status, secrets already masked
    status: int = 0  # 0: no answer at all
    retry_after: str | None = None  # the answer's Retry-After header, as sent


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """Send again after ``delay`` seconds."""

    delay: float


@dataclasses.dataclass(frozen=True, slots=True)
class GiveUp:
    """Send no more: the attempts are spent, or (``asked`` set) the upstream's
    ``Retry-After`` is beyond ``retry_after_cap``."""

    asked: float | None = None


class RetryPolicy:
    """The retry rules of one service.

    The number of attempts is fixed at registration; the backoff and the
    ``Retry-After`` cap are read from the config at each decision, so a change
    to a registered service's config takes effect on its next failure.
    """

    __slots__ = ("config", "max_attempts")

    def __init__(self, config: ExternalServiceConfig) -> None:
        self.config = config
        self.max_attempts = config.max_retries + 1

    def attempts(self, method: str, idempotency_key: str | None) -> int:
        """Attempts a call gets: repeating it must be safe (an idempotent method, or a key)."""
        return self.max_attempts if idempotency_key or method in IDEMPOTENT_METHODS else 1

    def after(self, failure: Failure, attempt: int, attempts: int) -> Retry | GiveUp:
        """What to do after attempt number ``attempt`` (1-based) of ``attempts`` failed."""
        if attempt >= attempts:
            return GiveUp()
        config = self.config
        delay = backoff_delay(attempt, config.retry_backoff, config.retry_max_delay)
        if failure.status in RETRY_AFTER_STATUSES:
            asked = parse_retry_after(failure.retry_after)
            if asked is not None:
                if asked > config.retry_after_cap:
                    return GiveUp(asked)
                delay = asked  # exactly what was asked: sooner would be refused again
        return Retry(delay)
