"""Retry arithmetic: which methods are safe to repeat, backoff with jitter, Retry-After.

:class:`~ads_infra.external_services.policy.RetryPolicy` decides with these,
and the retry *loop* is :meth:`ExternalServiceManager.request`, written by
hand rather than with tenacity: it must sleep exactly as long as an upstream's
``Retry-After`` asks (tenacity's wait strategies see the exception, not the
response), stop as soon as the circuit opens, and cost nothing on the common
path where the first attempt succeeds (tenacity builds a retry state object
for every call, which the benchmark's hot path cannot afford).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from email.utils import parsedate_to_datetime

__all__ = ["IDEMPOTENT_METHODS", "backoff_delay", "parse_retry_after"]

# RFC 9110 section 9.2.2: repeating these has the same effect as sending once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with "equal jitter" for retry number ``attempt`` (1-based).

    Half the exponential step is fixed, half random: callers that failed
    together spread out, yet none retries almost immediately.
    """
    step = min(cap, base * 2.0 ** (attempt - 1))
    return step / 2 + random.uniform(0, step / 2)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    None when absent or unreadable, including negative or non-finite seconds
    (the caller then uses its own backoff); a date in the past gives 0.0. All
    three date formats RFC 9110 requires are read: IMF-fixdate, RFC 850 and
    asctime.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "-5" or "nan" is a broken header, not a request to retry at once.
        return seconds if seconds >= 0 and math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # asctime carries no zone and "-0000" parses as naive; HTTP dates are
        # always UTC (RFC 9110 section 5.6.7).
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
