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
import math

import aiohttp

from ads_infra.external_services.config import ExternalServiceConfig
from ads_infra.external_services.response import UpstreamErrorBody
from ads_infra.external_services.retry import IDEMPOTENT_METHODS, backoff_delay, parse_retry_after

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "PERMANENT",
    "PERMANENT_ERROR_CODES",
    "RETRYABLE",
    "SUCCESS",
    "Failure",
    "GiveUp",
    "Retry",
    "RetryPolicy",
    "Verdict",
    "classify_exception",
    "classify_status",
    "failure_kind",
    "should_retry_hint",
]

# Statuses whose Retry-After says when the upstream will take the request again
# (RFC 9110 for 503, RFC 6585 for 429); on a 502 it is no promise. The
# non-standard ``retry-after-ms`` (OpenAI's) is read on every retryable status:
# only servers that mean it send it.
RETRY_AFTER_STATUSES = (429, 503)
# 4xx statuses retried by default besides 429: 408 Request Timeout is a passing
# failure by definition. A service adds its own (OpenAI: 409, a lock timeout).
DEFAULT_RETRY_STATUSES = frozenset({408, 429})
# Provider error codes that no retry can change, whatever the status (OpenAI
# answers 429 for an exhausted quota: retrying it only burns the attempts).
PERMANENT_ERROR_CODES = frozenset({"insufficient_quota", "invalid_api_key"})


class Verdict(enum.Enum):
    """What an HTTP status means for the call."""

    SUCCESS = "success"  # 1xx-3xx: the answer
    PERMANENT = "permanent"  # a 4xx not in the retry set: the request is wrong
    RETRYABLE = "retryable"  # 5xx and the retry set (429, 408...): the upstream failed


# The verdicts as module globals: on Python 3.11 reading a member off its Enum
# class goes through a Python-level descriptor, and every call reads one.
SUCCESS = Verdict.SUCCESS
PERMANENT = Verdict.PERMANENT
RETRYABLE = Verdict.RETRYABLE


def classify_status(
    status: int, retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
) -> Verdict:
    if status < 400:
        return SUCCESS
    if status < 500 and status not in retry_statuses:
        return PERMANENT
    return RETRYABLE


def should_retry_hint(value: str | None) -> bool | None:
    """The upstream's ``x-should-retry`` (OpenAI's, and its SDK obeys it): True, False or None."""
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def failure_kind(status: int) -> str:
    """The metrics' error kind of a retryable status."""
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    return "server_error" if status >= 500 else "client_error"


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
    """One failed attempt of a retryable kind (timeout, connection, rate_limited, server_error).

    ``final``: the upstream said not to retry (``x-should-retry: false``).
    ``error``: what its error body said (message and provider code), if it answered.
    """

    kind: str
    problem: str  # for messages and status, secrets already masked
    status: int = 0  # 0: no answer at all
    retry_after: str | None = None  # the answer's Retry-After header, as sent
    retry_after_ms: str | None = None  # the answer's retry-after-ms header, as sent
    final: bool = False
    error: UpstreamErrorBody | None = None

    def asked_delay(self) -> float | None:
        """Seconds the upstream asked to wait, or None: ``retry-after-ms`` first, as
        OpenAI's SDK reads it, then ``Retry-After`` (429 and 503 only)."""
        if self.retry_after_ms is not None:
            try:
                millis = float(self.retry_after_ms)
            except ValueError:
                millis = -1.0
            if millis >= 0 and math.isfinite(millis):
                return millis / 1000
        if self.status in RETRY_AFTER_STATUSES:
            return parse_retry_after(self.retry_after)
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """Send again after ``delay`` seconds."""

    delay: float


@dataclasses.dataclass(frozen=True, slots=True)
class GiveUp:
    """Send no more: the attempts are spent; or (``asked`` set) the upstream's
    ``Retry-After`` is beyond ``retry_after_cap``; or (``deadline`` set) the next
    attempt would start after the call's deadline; or (``told``) the upstream
    said ``x-should-retry: false``."""

    asked: float | None = None
    deadline: float | None = None
    told: bool = False


class RetryPolicy:
    """The retry rules of one service.

    The number of attempts is fixed at registration; the backoff, the
    ``Retry-After`` cap and the deadline are read from the config at each
    decision, so a change to a registered service's config takes effect on its
    next failure.
    """

    __slots__ = ("config", "max_attempts")

    def __init__(self, config: ExternalServiceConfig) -> None:
        self.config = config
        self.max_attempts = config.max_retries + 1

    def attempts(self, method: str, idempotency_key: str | None) -> int:
        """Attempts a call gets: repeating it must be safe (an idempotent method, or a key)."""
        return self.max_attempts if idempotency_key or method in IDEMPOTENT_METHODS else 1

    def after(
        self, failure: Failure, attempt: int, attempts: int, elapsed: float = 0.0
    ) -> Retry | GiveUp:
        """What to do after attempt number ``attempt`` (1-based) of ``attempts`` failed,
        ``elapsed`` seconds after the call began."""
        if failure.final:
            return GiveUp(told=True)
        if attempt >= attempts:
            return GiveUp()
        config = self.config
        delay = backoff_delay(attempt, config.retry_backoff, config.retry_max_delay)
        asked = failure.asked_delay()
        if asked is not None:
            if asked > config.retry_after_cap:
                return GiveUp(asked)
            delay = asked  # exactly what was asked: sooner would be refused again
        deadline = config.deadline
        if deadline is not None and elapsed + delay >= deadline:
            return GiveUp(asked, deadline=deadline)
        return Retry(delay)
