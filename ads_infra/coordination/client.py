"""Coordinator: the coordination Redis client and the fleet-wide pieces built on it.

Built by the container when ``coordination.backend`` is ``redis`` (with
``local`` the container passes ``None`` and every guarantee stays per
process, as before). Construction does no I/O; :meth:`start` pings Redis
(a failure is logged, not raised: each piece has its own fallback) and
starts the pub/sub bus. The client and bus are bound to the running loop.
"""

from __future__ import annotations

import logging
import os
import time
import uuid

from redis.asyncio import Redis

from ads_infra.coordination.breakers import SharedBreakers
from ads_infra.coordination.bus import Bus
from ads_infra.coordination.errors import REDIS_ERRORS, reason
from ads_infra.coordination.flight import FleetFlight
from ads_infra.coordination.outbox import StreamOutbox
from ads_infra.coordination.ratelimit import FleetPacer
from ads_infra.core.health import HealthStatus
from ads_infra.core.redact import mask_url
from ads_infra.core.settings import DEFAULT_REDIS_URL, CoordinationConfig

__all__ = ["Coordinator"]

logger = logging.getLogger("ads_infra.coordination")


class Coordinator:
    """One process's link to the fleet: pacers, breaker store, bus, single-flight locks."""

    def __init__(self, config: CoordinationConfig) -> None:
        self.config = config
        url = config.redis_url or DEFAULT_REDIS_URL
        self.target = mask_url(url)
        self.client: Redis = Redis.from_url(
            url,
            socket_timeout=config.socket_timeout,
            socket_connect_timeout=config.socket_timeout,
            health_check_interval=5,
        )
        # Unique per process (and per Coordinator): tells our own messages apart.
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        prefix = config.key_prefix
        self.invalidation_channel = f"{prefix}:invalidate"
        flight_channel = f"{prefix}:flight"
        self.bus = Bus(
            self.client,
            self.origin,
            config.retry_interval,
            (flight_channel, self.invalidation_channel),
        )
        self.breakers = SharedBreakers(self.client, prefix, self.origin)
        self.flight = FleetFlight(self.client, self.bus, flight_channel, config.lock_ttl)
        self.breaker_sync_interval = config.breaker_sync_interval

    def pacer(self, service: str, rate: float, period: float) -> FleetPacer:
        """The fleet-wide limiter of ``service``: ``rate`` requests per ``period`` seconds."""
        return FleetPacer(
            self.client,
            f"{self.config.key_prefix}:rate:{service}",
            rate,
            period,
            expected_processes=self.config.expected_processes,
            retry_interval=self.config.retry_interval,
        )

    def outbox(self, name: str) -> StreamOutbox:
        """This process's consumer of the durable outbox ``name`` (a Redis Stream)."""
        return StreamOutbox(
            self.client,
            self.config.key_prefix,
            name,
            self.origin,
            claim_after=self.config.outbox_claim_after,
        )

    async def start(self) -> None:
        try:
            await self.client.ping()
        except REDIS_ERRORS as exc:
            logger.warning(
                "coordination Redis %s unreachable (%s): each piece falls back per process "
                "until it answers",
                self.target,
                reason(exc),
            )
        self.bus.start()

    async def close(self) -> None:
        await self.bus.close()
        await self.client.aclose()

    async def __aenter__(self) -> Coordinator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def health_check(self) -> HealthStatus:
        """Whether the coordination Redis answers; never raises.

        Unhealthy means degraded, not down: while it is unreachable each piece
        falls back to its per-process behaviour (see docs/coordination.md).
        """
        started = time.perf_counter()
        try:
            await self.client.ping()
        except REDIS_ERRORS as exc:
            return HealthStatus(
                component="coordination", backend="redis", healthy=False,
                detail=f"{reason(exc)}; each process coordinates alone until it answers",
                target=self.target,
            )  # fmt: skip
        return HealthStatus(
            component="coordination", backend="redis", healthy=True,
            latency_ms=(time.perf_counter() - started) * 1000, target=self.target,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"Coordinator(target={self.target!r}, origin={self.origin!r})"
