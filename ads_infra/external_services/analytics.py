"""AnalyticsService: events buffered in memory and sent to a Segment-style ``/v1/batch``.

On the wire it does what segment-analytics-python does (its captured
behaviour is replayed in the tests): a message over 32 KB is refused when it
is tracked; a batch is cut once it reaches 475,000 bytes of messages, and
never exceeds 500,000 in all; each attempt carries a fresh ``sentAt`` and,
on a retry, ``X-Retry-Count``; ``gzip`` compresses the body
(``Content-Encoding: gzip``); every event names a user (``userId``) or an
explicit ``anonymousId``.

Events are flushed when ``flush_size`` are waiting, every ``flush_interval``
seconds, and on :meth:`close` (which the container's shutdown calls before
the manager's, and a manager closed on its own calls before closing its
session), so an orderly shutdown loses no event. A batch that failed for a
passing reason (connection, timeout, 408, 429, 5xx) goes back to the front of
the buffer and is retried by the next flush. A batch refused as malformed or
too large (400, 413) is split in halves and each half sent again, down to
single events, so only the events the endpoint refuses are dropped; another
4xx (a wrong write key) drops the batch, as it would otherwise block every
later event. The buffer is bounded by ``max_buffer`` (oldest events dropped,
and counted, beyond it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from ads_infra.core.errors import ExternalServiceError, UpstreamError
from ads_infra.core.loader import environment_settings
from ads_infra.core.settings import AnalyticsConfig
from ads_infra.external_services.config import AuthScheme, ExternalServiceConfig, ServiceType
from ads_infra.external_services.identity import LIBRARY_NAME, VERSION
from ads_infra.external_services.manager import ExternalServiceManager
from ads_infra.external_services.service import ManagedService

__all__ = ["AnalyticsService"]

logger = logging.getLogger("ads_infra.external_services.analytics")

BATCH_PATH = "/v1/batch"
LIBRARY = {"name": LIBRARY_NAME, "version": VERSION}
# Segment's HTTP Tracking API: 32 KB per message, 500 KB per batch request.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500_000
# As segment-analytics-python: a batch is cut once its messages reach this,
# leaving room below MAX_BATCH_BYTES for the envelope ("batch", "sentAt").
BATCH_SIZE_LIMIT = 475_000
_ENVELOPE_BYTES = 100  # '{"batch":[...],"sentAt":"<ISO time>"}' around the messages
_JSON = {"Content-Type": "application/json"}


def _refused_for_good(status: int) -> bool:
    """A 4xx that sending the same batch again cannot change (408 and 429 can)."""
    return 400 <= status < 500 and status not in (408, 429)


def _splittable(status: int | None) -> bool:
    """A refusal that a smaller batch may get past: too large, or one malformed event."""
    return status in (400, 413)


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
        # Each event encoded once, when tracked: its size is known for batching, and
        # a property changed after track() cannot change (or break) what is sent.
        self._buffer: list[bytes] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self.sent = 0
        self.dropped = 0
        self.rejected = 0  # of the dropped: events the endpoint refused for good
        self.splits = 0  # batches split in halves after a 400/413
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

        The event must name who did it: ``user_id``, or the ``anonymous_id`` the
        caller keeps for a visitor not signed in (a cookie, a device id).
        Segment merges every event with one ``anonymousId`` into one person, so
        no id is made up here: a shared one would merge all visitors, a fresh
        one per event would count each event as a new person.

        Raises ValueError without an id or when the event encodes to more than
        32 KB (Segment's limit per message), TypeError when a property cannot
        be sent as JSON (checked here, so one bad event cannot hold up the
        others at flush time), and ExternalServiceError once the service is
        closed.
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
        if user_id is not None and user_id != "":
            message["userId"] = str(user_id)
        if anonymous_id:
            message["anonymousId"] = str(anonymous_id)
        if "userId" not in message and "anonymousId" not in message:
            what = message.get("event") or message["type"]
            raise ValueError(
                f"analytics: event {what!r} names no one: pass user_id, or the anonymous_id "
                "you keep for a visitor who is not signed in (Segment merges events by it; "
                "a shared id would merge every visitor into one person)"
            )
        message["messageId"] = str(uuid.uuid4())  # Segment deduplicates retries by it
        message["timestamp"] = _now()
        message["context"] = {**(context or {}), "library": LIBRARY}
        encoded = orjson.dumps(message)
        if len(encoded) > MAX_MESSAGE_BYTES:
            what = message.get("event") or message["type"]
            raise ValueError(
                f"analytics: event {what!r} is {len(encoded):,} bytes as JSON, over Segment's "
                f"limit of {MAX_MESSAGE_BYTES:,} bytes per message; it was not recorded. Send "
                "fewer or shorter properties (ids rather than whole objects)"
            )
        if not self.enabled:
            self.dropped += 1
            return
        self._buffer.append(encoded)
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
        """Send every buffered event now, in batches; return how many were sent.

        A batch holds at most ``flush_size`` events and is cut by size as
        Segment's client cuts it (see the module). A batch refused with 400 or
        413 is split in halves, each sent again, down to single events; an event
        refused alone, or a batch refused with another 4xx (not 408 or 429), is
        dropped, counted in ``dropped`` and ``rejected`` and logged, and the next
        batches are sent. On any other failure the unsent events go back to the
        front of the buffer and the error is raised.
        """
        self._register()
        sent = 0
        while self._buffer:
            work = [self._take_batch()]
            while work:
                batch = work.pop(0)
                try:
                    await self._post(batch)
                except UpstreamError as exc:
                    if _splittable(exc.status) and len(batch) > 1:
                        half = len(batch) // 2
                        work[:0] = [batch[:half], batch[half:]]
                        self.splits += 1
                        continue
                    if exc.status is not None and _refused_for_good(exc.status):
                        self._reject(batch, exc)
                        continue
                    self._requeue([batch, *work])
                    raise
                except BaseException:
                    self._requeue([batch, *work])
                    raise
                sent += len(batch)
                self.sent += len(batch)
        return sent

    def _take_batch(self) -> list[bytes]:
        """The next batch off the buffer: up to ``flush_size`` events, cut by size."""
        buffer = self._buffer
        total = _ENVELOPE_BYTES
        count = 0
        for message in buffer[: self.config.flush_size]:
            size = len(message) + 1  # and its comma
            if count and total + size > MAX_BATCH_BYTES:
                break
            count += 1
            total += size
            if total >= BATCH_SIZE_LIMIT:
                break
        batch = buffer[:count]
        del buffer[:count]
        return batch

    async def _post(self, batch: list[bytes]) -> None:
        messages = b",".join(batch)
        compress = self.config.gzip

        def attempt(retry: int) -> tuple[bytes, dict[str, str]]:
            # sentAt is when this attempt leaves: Segment corrects the events'
            # timestamps by sentAt against its own clock, so a stale one skews them.
            body = b'{"batch":[' + messages + b'],"sentAt":"' + _now().encode() + b'"}'
            headers = {"X-Retry-Count": str(retry)} if retry else {}
            if compress:
                body = gzip.compress(body, compresslevel=6)
                headers["Content-Encoding"] = "gzip"
            return body, headers

        await self.manager.request(
            self.service_name,
            "POST",
            BATCH_PATH,
            data=b"",
            headers=_JSON,
            idempotency_key=uuid.uuid4().hex,
            per_attempt=attempt,
        )

    def _requeue(self, batches: list[list[bytes]]) -> None:
        self._buffer[:0] = [m for batch in batches for m in batch]  # the next flush sends them
        self._trim()

    def _reject(self, batch: list[bytes], exc: UpstreamError) -> None:
        # Sent again it would be refused again, and hold up every event behind it.
        self.dropped += len(batch)
        self.rejected += len(batch)
        logger.error(
            "%s: the endpoint refused %d event(s) (%s); dropped them",
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
            "splits": self.splits,
            "flushes_in_flight": len(self._inflight),
        }
