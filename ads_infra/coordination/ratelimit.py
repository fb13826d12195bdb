"""A rate limit shared by every process: GCRA pacing in Redis, local fallback.

Not the ``limits`` library: its strategies answer "may I send now?" (hit or
refuse), so N processes wanting to *wait* for their turn would poll Redis
and race each other. Here one atomic script *reserves* the caller's slot on
the fleet's schedule (the generic cell rate algorithm with no burst: the
theoretical arrival time advances by ``period / rate`` per request) and
returns how long to sleep: one round trip per request, no polling, and the
sent requests are spaced ``period / rate`` apart fleet-wide. Redis's own
clock (``TIME``) times it, so machines with skewed clocks agree.

While Redis is unreachable each process paces itself at
``rate / expected_processes`` (never more than the total), logs that once,
and tries Redis again every ``retry_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiolimiter import AsyncLimiter
from redis.asyncio import Redis

from ads_infra.coordination.errors import REDIS_ERRORS, reason

__all__ = ["FleetPacer"]

logger = logging.getLogger("ads_infra.coordination")

# KEYS[1]: the service's schedule; ARGV[1]: microseconds between requests.
# Returns the microseconds the caller waits for its reserved slot.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.floor((nxt - now) / 1000) + 1000)
return tat - now
"""


class FleetPacer:
    """``await acquire()`` returns when this process may send its next request."""

    def __init__(
        self,
        client: Redis,
        key: str,
        rate: float,
        period: float,
        *,
        expected_processes: int,
        retry_interval: float,
    ) -> None:
        self._client = client
        self._key = key
        self._interval_us = max(1, round(period / rate * 1_000_000))
        self._script: Any = client.register_script(_RESERVE)
        # Local fallback: this process's share of the rate, spaced evenly.
        self._local_spacing = period * expected_processes / rate
        self._local: AsyncLimiter | None = None
        self._retry_interval = retry_interval
        self._down_until = 0.0  # monotonic; > now while Redis is bypassed
        self._down_logged = False

    async def acquire(self) -> None:
        if time.monotonic() >= self._down_until:
            try:
                wait_us = int(await self._script(keys=[self._key], args=[self._interval_us]))
            except REDIS_ERRORS as exc:
                self._went_down(exc)
            else:
                if self._down_logged:
                    self._down_logged = False
                    logger.warning("rate limit %s: shared through Redis again", self._key)
                if wait_us > 0:
                    await asyncio.sleep(wait_us / 1_000_000)
                return
        if self._local is None:
            self._local = AsyncLimiter(1, self._local_spacing)
        await self._local.acquire()

    def _went_down(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_interval
        if not self._down_logged:
            self._down_logged = True
            logger.warning(
                "rate limit %s: coordination Redis unreachable (%s); pacing this process "
                "alone at one request per %.3f s until it returns",
                self._key,
                reason(exc),
                self._local_spacing,
            )
