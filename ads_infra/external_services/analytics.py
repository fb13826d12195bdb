"""AnalyticsService: events buffered in memory and sent to a Segment-style ``/v1/batch``.

Events are flushed when ``flush_size`` are waiting, every ``flush_interval``
seconds, and on :meth:`close` (which the manager calls before closing its
session), so an orderly shutdown loses no event. A failed batch goes back to
the front of the buffer and is retried by the next flush; the buffer is
bounded by ``max_buffer`` (oldest events dropped, and counted, beyond it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from ads_infra.config import AnalyticsConfig
from ads_infra.errors import ExternalServiceError
from ads_infra.external_services.manager import (
    AuthScheme,
    ExternalServiceConfig,
    ExternalServiceManager,
    ServiceType,
)

__all__ = ["AnalyticsService"]

logger = logging.getLogger("ads_infra.external_services.analytics")

BATCH_PATH = "/v1/batch"
LIBRARY = {"name": "ads-infra", "version": "0.1.0"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AnalyticsService:
    """Track events; off (events counted as dropped) when ``config.url`` is empty."""

    def __init__(
        self,
        manager: ExternalServiceManager,
        config: AnalyticsConfig | None = None,
        *,
        service_name: str = "analytics",
    ) -> None:
        self.manager = manager
        self.config = config or AnalyticsConfig()
        self.service_name = service_name
        self._buffer: list[dict[str, Any]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._anonymous_id = uuid.uuid4().hex
        self.sent = 0
        self.dropped = 0
        url = self.config.url
        if url:
            base = url.rstrip("/")
            base = base.removesuffix(BATCH_PATH)
            manager.register_service(
                service_name,
                ExternalServiceConfig(
                    service_type=ServiceType.ANALYTICS,
                    base_url=base,
                    api_key=self.config.write_key,
                    auth_scheme=AuthScheme.BASIC,
                    rate_limit=self.config.rate_limit,
                    timeout=self.config.timeout,
                    max_retries=self.config.max_retries,
                ),
            )
        manager.attach(self)

    @property
    def enabled(self) -> bool:
        return bool(self.config.url)

    @property
    def pending(self) -> int:
        """Events buffered, not yet sent."""
        return len(self._buffer)

    # --- recording ----------------------------------------------------------------

    async def track(
        self,
        event: str,
        properties: Mapping[str, Any] | None = None,
        *,
        user_id: str | int | None = None,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Buffer a ``track`` event (Segment's spec); returns without network I/O."""
        if not event:
            raise ValueError("track needs an event name")
        message: dict[str, Any] = {
            "type": "track",
            "event": event,
            "properties": dict(properties or {}),
        }
        self._enqueue(message, user_id, anonymous_id, context)

    async def identify(
        self,
        user_id: str | int,
        traits: Mapping[str, Any] | None = None,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Buffer an ``identify`` call carrying ``traits`` of ``user_id``."""
        self._enqueue({"type": "identify", "traits": dict(traits or {})}, user_id, None, context)

    track_event = track

    def _enqueue(
        self,
        message: dict[str, Any],
        user_id: str | int | None,
        anonymous_id: str | None,
        context: Mapping[str, Any] | None,
    ) -> None:
        if not self.enabled:
            self.dropped += 1
            return
        if user_id is not None:
            message["userId"] = str(user_id)
        else:
            message["anonymousId"] = anonymous_id or self._anonymous_id
        message["messageId"] = uuid.uuid4().hex  # Segment deduplicates retries by it
        message["timestamp"] = _now()
        message["context"] = {"library": LIBRARY, **(context or {})}
        self._buffer.append(message)
        self._trim()
        if self._timer is None and self.config.flush_interval > 0:
            self._timer = asyncio.get_running_loop().create_task(self._tick())
        if len(self._buffer) >= self.config.flush_size:
            self._spawn_flush()

    def _trim(self) -> None:
        excess = len(self._buffer) - self.config.max_buffer
        if excess > 0:
            del self._buffer[:excess]
            self.dropped += excess
            logger.warning(
                "%s: buffer full (%d events); dropped the %d oldest",
                self.service_name,
                self.config.max_buffer,
                excess,
            )

    # --- sending ------------------------------------------------------------------

    def _spawn_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush_quietly())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except ExternalServiceError as exc:
            logger.warning(
                "%s: flush failed, %d events kept for the next one: %s",
                self.service_name,
                len(self._buffer),
                exc,
            )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval)
            if self._buffer:
                self._spawn_flush()

    async def flush(self) -> int:
        """Send every buffered event now, in batches of ``flush_size``; return how many.

        On failure the unsent events go back to the front of the buffer and the
        error is raised.
        """
        sent = 0
        while self._buffer:
            batch = self._buffer[: self.config.flush_size]
            del self._buffer[: len(batch)]
            try:
                await self.manager.request(
                    self.service_name,
                    "POST",
                    BATCH_PATH,
                    json={"batch": batch, "sentAt": _now()},
                    idempotency_key=uuid.uuid4().hex,
                )
            except BaseException:
                self._buffer[:0] = batch  # nothing lost: the next flush sends them
                self._trim()
                raise
            sent += len(batch)
            self.sent += len(batch)
        return sent

    async def close(self) -> None:
        """Stop the interval timer, wait for flushes in flight, send what is left."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._buffer and self.enabled:
            try:
                await self.flush()
            except ExternalServiceError as exc:
                raise ExternalServiceError(
                    f"{self.service_name}: {len(self._buffer)} events could not be delivered "
                    f"at close ({exc}); check the analytics endpoint",
                    service=self.service_name,
                    status=exc.status,
                ) from None

    def get_stats(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "pending": len(self._buffer),
            "sent": self.sent,
            "dropped": self.dropped,
            "flushes_in_flight": len(self._inflight),
        }
