"""AnalyticsService: events buffered in memory and sent to a Segment-style ``/v1/batch``.

Longer than the other modules: one send loop serves both the in-memory
buffer and the fleet's durable outbox, and splitting it would split that loop.

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

That buffer is process memory: a killed process loses what it holds. With
``coordination.backend: redis`` (a fleet link on the manager) ``track()``
instead appends the encoded event to a Redis Stream outbox before returning
(``ads_infra.coordination.outbox``), and each process's flusher sends what it
takes from the stream (its own failed entries, a dead process's, new ones)
and acknowledges each batch once delivered or refused for good: every
accepted event is delivered at least once, with the ``messageId`` it got at
``track()``, and the fleet-wide counters keep ``accepted = delivered +
dropped`` once the stream is drained. While that Redis is unreachable,
events wait in this process's buffer as without it (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from ads_infra.core.errors import ExternalServiceError, UpstreamError
from ads_infra.core.loader import environment_settings
from ads_infra.core.settings import AnalyticsConfig
from ads_infra.external_services.config import AuthScheme, ExternalServiceConfig, ServiceType
from ads_infra.external_services.fleet import Outbox
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

# (outbox entry id, or "" for the in-memory buffer; the encoded event)
Entry = tuple[str, bytes]
Settle = Callable[[list[Entry], str], Awaitable[None]]


def _batch_length(messages: list[bytes], flush_size: int) -> int:
    """How many of ``messages`` (from the front) make the next batch: cut by count and size."""
    total = _ENVELOPE_BYTES
    count = 0
    for message in messages[:flush_size]:
        size = len(message) + 1  # and its comma
        if count and total + size > MAX_BATCH_BYTES:
            break
        count += 1
        total += size
        if total >= BATCH_SIZE_LIMIT:
            break
    return count


async def _kept(entries: list[Entry], outcome: str) -> None:
    """The in-memory buffer's settlement: the counters are this object's, nothing to tell."""


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
        self.accepted = 0  # by track()/identify() in this process
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
                    failure_threshold=self.config.failure_threshold,
                    recovery_timeout=self.config.recovery_timeout,
                ),
            )
        fleet = manager.fleet
        self._outbox: Outbox | None = (
            fleet.outbox(service_name) if fleet is not None and url else None
        )
        # One flusher per process reads the stream; made in the loop that first flushes.
        self._outbox_lock: asyncio.Lock | None = None
        self._outbox_down = False
        self._since_flush = 0  # events added to the outbox since the last flush began

    def prepare_settings(self, config: AnalyticsConfig) -> Callable[[], None]:
        """For a reload: the endpoint's rate limit, retries and breaker thresholds."""

        def swap() -> None:
            self.config = config

        return self._limits_applier([self.service_name], config, swap)

    @property
    def enabled(self) -> bool:
        return bool(self.config.url)

    @property
    def pending(self) -> int:
        """Events buffered in this process, not yet sent (the outbox's are not counted)."""
        return len(self._buffer)

    @property
    def durable(self) -> bool:
        """True when events go through the Redis Stream outbox (coordination: redis)."""
        return self._outbox is not None

    async def start(self) -> None:
        """Register the upstream; with the outbox, start the timer that also sends the
        entries a dead process left (a process may send without tracking anything)."""
        await super().start()
        if self._outbox is not None and not self._closing:
            self._start_timer()

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
        await self._accept(self._encode(message, user_id, anonymous_id, context))

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
        message = {"type": "identify", "traits": props}
        await self._accept(self._encode(message, user_id, None, context))

    track_event = track

    def _encode(
        self,
        message: dict[str, Any],
        user_id: str | int | None,
        anonymous_id: str | None,
        context: Mapping[str, Any] | None,
    ) -> bytes:
        """The event as sent (with its messageId); raises as track() documents."""
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
        return encoded

    async def _accept(self, encoded: bytes) -> None:
        self.accepted += 1
        if not self.enabled:
            self.dropped += 1
            return
        if self._outbox is None or not await self._add_to_outbox(encoded):
            self._buffer.append(encoded)
            self._trim()
        if self._closing:
            return  # close() sends it with its final flush; a new task would outlive close
        self._start_timer()
        # With the outbox, one flush in flight sends everything tracked meanwhile too.
        outbox_full = self._since_flush >= self.config.flush_size and not self._inflight
        if len(self._buffer) >= self.config.flush_size or outbox_full:
            self._spawn_flush()

    async def _add_to_outbox(self, encoded: bytes) -> bool:
        """Append to the outbox; False when it failed (the caller buffers the event)."""
        assert self._outbox is not None
        try:
            added = await self._outbox.add(encoded, self.config.max_buffer)
        except Exception as exc:
            if not self._outbox_down:
                self._outbox_down = True
                logger.warning(
                    "%s: the outbox (coordination Redis) failed (%s: %s); events wait in this "
                    "process's memory, not durable, until it answers",
                    self.service_name,
                    type(exc).__name__,
                    exc,
                )
            return False
        if self._outbox_down:
            self._outbox_down = False
            logger.warning("%s: events go to the outbox again", self.service_name)
        if not added:
            self.dropped += 1  # and in the fleet's counters, by the same script
            logger.warning(
                "%s: the outbox holds %d events (max_buffer); dropped a new one",
                self.service_name,
                self.config.max_buffer,
            )
        self._since_flush += 1
        return True

    def _start_timer(self) -> None:
        if self._timer is None and self.config.flush_interval > 0:
            self._timer = asyncio.get_running_loop().create_task(self._tick())

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
            if (self._buffer or self._outbox is not None) and not self._inflight:
                self._spawn_flush()

    async def flush(self) -> int:
        """Send every buffered event now, in batches; return how many were sent.

        A batch holds at most ``flush_size`` events and is cut by size as
        Segment's client cuts it (see the module). A batch refused with 400 or
        413 is split in halves, each sent again, down to single events; an event
        refused alone, or a batch refused with another 4xx (not 408 or 429), is
        dropped, counted in ``dropped`` and ``rejected`` and logged, and the next
        batches are sent. On any other failure the unsent events go back to the
        front of the buffer (or stay pending in the outbox) and the error is raised.
        With the outbox, it sends until the stream has nothing for this process.
        """
        self._register()
        sent = 0
        while self._buffer:
            count = _batch_length(self._buffer, self.config.flush_size)
            work = [[("", m) for m in self._buffer[:count]]]
            del self._buffer[:count]
            try:
                sent += await self._send(work, _kept)
            except BaseException:
                self._requeue(work)
                raise
        if self._outbox is not None:
            sent += await self._flush_outbox(None)
        return sent

    async def _flush_outbox(self, deadline: float | None) -> int:
        """Send what the outbox gives this process; acknowledge each batch once settled.

        On a failure the taken entries stay pending on this consumer: the
        next flush takes them first (or, if this process dies, another one
        after ``outbox_claim_after``).
        """
        outbox = self._outbox
        assert outbox is not None
        sent = 0
        if self._outbox_lock is None:
            self._outbox_lock = asyncio.Lock()
        async with self._outbox_lock:
            self._since_flush = 0
            while deadline is None or time.monotonic() < deadline:
                try:
                    entries = await outbox.take(self.config.flush_size)
                except Exception as exc:
                    raise self._outbox_error(exc) from None
                if not entries:
                    break
                while entries:
                    count = _batch_length([m for _, m in entries], self.config.flush_size)
                    work, entries = [entries[:count]], entries[count:]
                    sent += await self._send(work, self._settle)
        return sent

    async def _settle(self, entries: list[Entry], outcome: str) -> None:
        assert self._outbox is not None
        try:
            await self._outbox.settle([ident for ident, _ in entries], outcome)
        except Exception as exc:
            # Unacknowledged, they are sent again later: at least once, not lost.
            raise self._outbox_error(exc) from None

    def _outbox_error(self, exc: Exception) -> ExternalServiceError:
        return ExternalServiceError(
            f"{self.service_name}: the outbox (coordination Redis) failed: "
            f"{type(exc).__name__}: {exc}",
            service=self.service_name,
        )

    async def _send(self, work: list[list[Entry]], settle: Settle) -> int:
        """Send the batches in ``work`` (split on 400/413); return how many were delivered.

        Each batch delivered or refused for good is settled (``delivered`` or
        ``dropped``) as it ends. On another failure the batch goes back to the
        front of ``work``, which the caller then holds unsent, and the error is raised.
        """
        sent = 0
        while work:
            batch = work.pop(0)
            try:
                await self._post([message for _, message in batch])
            except UpstreamError as exc:
                if _splittable(exc.status) and len(batch) > 1:
                    half = len(batch) // 2
                    work[:0] = [batch[:half], batch[half:]]
                    self.splits += 1
                    continue
                if exc.status is not None and _refused_for_good(exc.status):
                    self._reject(batch, exc)
                    await settle(batch, "dropped")
                    continue
                work.insert(0, batch)
                raise
            except BaseException:
                work.insert(0, batch)
                raise
            sent += len(batch)
            self.sent += len(batch)
            await settle(batch, "delivered")
        return sent

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

    def _requeue(self, batches: list[list[Entry]]) -> None:
        self._buffer[:0] = [m for batch in batches for _, m in batch]  # the next flush sends them
        self._trim()

    def _reject(self, batch: list[Entry], exc: UpstreamError) -> None:
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
            if self._outbox is not None and self.enabled:
                await self._close_outbox()
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

    async def _close_outbox(self) -> None:
        """Send what the outbox holds for a while; what is left waits there, not lost."""
        try:
            await self._flush_outbox(time.monotonic() + self.config.timeout)
        except ExternalServiceError as exc:
            logger.warning(
                "%s: at close, events stay in the outbox for the other processes "
                "(or the next start): %s",
                self.service_name,
                exc,
            )

    async def fleet_counts(self) -> dict[str, int] | None:
        """The fleet's ``accepted``, ``delivered``, ``dropped`` and ``waiting`` (outbox only)."""
        if self._outbox is None:
            return None
        return await self._outbox.counts()

    def get_stats(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "durable": self._outbox is not None,
            "accepted": self.accepted,
            "pending": len(self._buffer),
            "sent": self.sent,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "splits": self.splits,
            "flushes_in_flight": len(self._inflight),
        }
