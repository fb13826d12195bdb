"""AnalyticsService: events buffered in memory and sent to a Segment-style ``/v1/batch``.

Events are flushed when ``flush_size`` are waiting, every ``flush_interval``
seconds, and on :meth:`close` (which the container's shutdown calls before
the manager's, and a manager closed on its own calls before closing its
session), so an orderly shutdown loses no event. A batch that failed for a
passing reason (connection, timeout, 429, 5xx) goes back to the front of the
buffer and is retried by the next flush; one the endpoint refuses for good
(another 4xx) is dropped and counted, as it would otherwise block every later
event. The buffer is bounded by ``max_buffer`` (oldest events dropped, and
counted, beyond it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from ads_infra.core.errors import ExternalServiceError, UpstreamError
from ads_infra.core.loader import environment_settings
from ads_infra.core.settings import AnalyticsConfig
from ads_infra.external_services.config import AuthScheme, ExternalServiceConfig, ServiceType
from ads_infra.external_services.manager import ExternalServiceManager
from ads_infra.external_services.service import ManagedService

__all__ = ["AnalyticsService"]

logger = logging.getLogger("ads_infra.external_services.analytics")

BATCH_PATH = "/v1/batch"
LIBRARY = {"name": "ads-infra", "version": "0.1.0"}


def _refused_for_good(status: int) -> bool:
    """A 4xx that sending the same batch again cannot change (408 and 429 can)."""
    return 400 <= status < 500 and status not in (408, 429)


def _check_json(what: str, kind: str, values: Mapping[str, Any]) -> None:
    """Raise TypeError naming the first of ``values`` that JSON cannot carry."""
    try:
        orjson.dumps(values)
    except TypeError:
        pass
    else:
        return
    for key, value in values.items():
        if not isinstance(key, str):
            raise TypeError(
                f"analytics: {what} has a {kind} named by a {type(key).__name__}; "
                "names must be strings"
            ) from None
        try:
            orjson.dumps(value)
        except TypeError as exc:
            # orjson's message names the type, never the value.
            raise TypeError(
                f"analytics: {what}: {kind} {key!r} cannot be sent as JSON ({exc}); convert "
                "it to a str, int, float, bool, list or dict"
            ) from None
    raise TypeError(f"analytics: {what} cannot be sent as JSON")


def _serializable(event: dict[str, Any]) -> bool:
    try:
        orjson.dumps(event)
    except TypeError:
        return False
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AnalyticsService(ManagedService):
    """Track events; off (events counted as dropped) when ``config.url`` is empty.

    The manager learns of the endpoint (``service_name``) at :meth:`start`, or
    on the first event, and from then on closes this service before its session.
    """

    closes_with_manager = True

    def __init__(
        self,
        manager: ExternalServiceManager,
        config: AnalyticsConfig | None = None,
        *,
        service_name: str = "analytics",
    ) -> None:
        super().__init__(manager)
        self.config = config or environment_settings().services.analytics
        self.service_name = service_name
        self._buffer: list[dict[str, Any]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._anonymous_id = uuid.uuid4().hex
        self._closing = False
        self._closed = False
        self.sent = 0
        self.dropped = 0
        self.rejected = 0  # of the dropped: in batches the endpoint refused for good
        url = self.config.url
        if url:
            base = url.rstrip("/")
            base = base.removesuffix(BATCH_PATH)
            self._add_upstream(
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
        """Buffer a ``track`` event (Segment's spec); returns without network I/O.

        Raises TypeError when a property cannot be sent as JSON (checked here, so
        one bad event cannot hold up the others at flush time), and
        ExternalServiceError once the service is closed.
        """
        if not event:
            raise ValueError("track needs an event name")
        props = dict(properties or {})
        _check_json(f"event {event!r}", "property", props)
        message: dict[str, Any] = {"type": "track", "event": event, "properties": props}
        self._enqueue(message, user_id, anonymous_id, context)

    async def identify(
        self,
        user_id: str | int,
        traits: Mapping[str, Any] | None = None,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Buffer an ``identify`` call carrying ``traits`` of ``user_id``."""
        props = dict(traits or {})
        _check_json("identify", "trait", props)
        self._enqueue({"type": "identify", "traits": props}, user_id, None, context)

    track_event = track

    def _enqueue(
        self,
        message: dict[str, Any],
        user_id: str | int | None,
        anonymous_id: str | None,
        context: Mapping[str, Any] | None,
    ) -> None:
        if self._closed:
            raise ExternalServiceError(
                f"{self.service_name}: the analytics service is closed, the event was not "
                "recorded; track events before closing the manager",
                service=self.service_name,
            )
        self._register()
        if context:
            _check_json("the event's context", "key", context)
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
        if self._closing:
            return  # close() sends it with its final flush; a new task would outlive close
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
        except Exception as exc:  # nobody awaits this task: report rather than lose it
            logger.error(
                "%s: flush failed unexpectedly, %d events kept: %s: %s",
                self.service_name,
                len(self._buffer),
                type(exc).__name__,
                self.manager.scrub(self.service_name, str(exc)),
            )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval)
            if self._buffer:
                self._spawn_flush()

    async def flush(self) -> int:
        """Send every buffered event now, in batches of ``flush_size``; return how many.

        A batch the endpoint refuses for good (a 4xx other than 408 and 429) is
        dropped, counted in ``dropped`` and ``rejected`` and logged, and the
        next batches are sent. On any other failure the unsent events go back
        to the front of the buffer and the error is raised.
        """
        self._register()
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
            except UpstreamError as exc:
                if exc.status is None or not _refused_for_good(exc.status):
                    self._requeue(batch)
                    raise
                self._reject(batch, exc)
                continue
            except TypeError:
                # track() checked every event, so one was changed since (a mutable
                # property): drop it rather than let it block the rest for ever.
                good = [event for event in batch if _serializable(event)]
                if len(good) == len(batch):
                    self._requeue(batch)
                    raise
                self.dropped += len(batch) - len(good)
                logger.error(
                    "%s: dropped %d events that JSON can no longer carry (changed after track())",
                    self.service_name,
                    len(batch) - len(good),
                )
                self._buffer[:0] = good
                continue
            except BaseException:
                self._requeue(batch)
                raise
            sent += len(batch)
            self.sent += len(batch)
        return sent

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        self._buffer[:0] = batch  # nothing lost: the next flush sends them
        self._trim()

    def _reject(self, batch: list[dict[str, Any]], exc: UpstreamError) -> None:
        # Sent again it would be refused again, and hold up every event behind it.
        self.dropped += len(batch)
        self.rejected += len(batch)
        logger.error(
            "%s: the endpoint refused a batch of %d events (%s); dropped them",
            self.service_name,
            len(batch),
            exc,  # the manager's message: secrets already masked
        )

    async def close(self) -> None:
        """Stop the interval timer, wait for flushes in flight, send what is left.

        Events tracked while it runs are sent too; after it, track() raises.
        """
        self._closing = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        try:
            if self._buffer and self.enabled:
                # Its loop runs until the buffer is empty, so events tracked meanwhile go too.
                await self.flush()
        except ExternalServiceError as exc:
            raise ExternalServiceError(
                f"{self.service_name}: {len(self._buffer)} events could not be delivered "
                f"at close ({exc}); check the analytics endpoint",
                service=self.service_name,
                status=exc.status,
            ) from None
        finally:
            self._closed = True  # no await since the flush's last check of the buffer

    def get_stats(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "pending": len(self._buffer),
            "sent": self.sent,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "flushes_in_flight": len(self._inflight),
        }
