"""The one pub/sub connection per process: invalidations and "value landed" notices.

Messages are ``<origin> <kind> <payload>``: a process ignores its own
(``origin``), and dispatches the others to the handler registered for their
channel. Pub/sub delivers nothing that was published while the connection
was down, so every disconnect (and the reconnect after it) calls the reset
callbacks: the two-level cache then drops its local copies instead of
trusting them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis

from ads_infra.coordination.errors import REDIS_ERRORS, reason

__all__ = ["Bus"]

logger = logging.getLogger("ads_infra.coordination")

Handler = Callable[[str], None]


class Bus:
    """Subscribes to the registered channels in a background task, reconnecting on failure."""

    def __init__(
        self, client: Redis, origin: str, retry_interval: float, channels: tuple[str, ...]
    ) -> None:
        self._client = client
        self.origin = origin
        self._retry_interval = retry_interval
        # Fixed up front: handlers may register after the subscription began.
        self._handlers: dict[str, list[Handler]] = {channel: [] for channel in channels}
        self._resets: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = False  # subscribed now (a flag: nothing waits for it)

    def on(self, channel: str, handler: Handler) -> None:
        """Call ``handler(payload)`` for other processes' messages on ``channel``."""
        if channel not in self._handlers:
            raise ValueError(f"the bus does not subscribe to {channel!r}")
        self._handlers[channel].append(handler)

    def on_reset(self, callback: Callable[[], None]) -> None:
        self._resets.append(callback)

    async def publish(self, channel: str, payload: str) -> None:
        await self._client.publish(channel, f"{self.origin} {payload}")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ads-bus")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        logged = False
        while True:
            try:
                await self._listen()
            except REDIS_ERRORS as exc:
                self.connected = False
                self._reset()
                if not logged:
                    logger.warning("coordination bus: disconnected (%s); retrying", reason(exc))
                    logged = True
                await asyncio.sleep(self._retry_interval)
            else:  # pragma: no cover  (_listen only returns by raising)
                return

    async def _listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*self._handlers)
            # Whatever was published while we were away is lost: start clean.
            self._reset()
            self.connected = True
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                self._dispatch(message["channel"], message["data"])
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
        origin, _, payload = text.partition(" ")
        if origin == self.origin:
            return
        for handler in self._handlers.get(name, ()):
            try:
                handler(payload)
            except Exception:  # a bad message must not end the subscription
                logger.exception("coordination bus: handling a message on %s failed", name)

    def _reset(self) -> None:
        for callback in self._resets:
            callback()
