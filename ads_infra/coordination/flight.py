"""Cross-process single flight for ``get_or_set``: a lock per key, waiters told when it lands.

The lock is redis-py's :class:`~redis.asyncio.lock.Lock`: a random token
set with ``NX`` and a TTL (``lock_ttl``), released by a script that deletes
it only while it still holds the owner's token, so a crashed owner's lock
expires and a slow owner cannot release someone else's. Waiters do not poll
the lock: they wait for the owner's notice on the bus (sent after the value
is stored), bounded by ``lock_ttl``, and then read the value.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from ads_infra.coordination.bus import Bus

__all__ = ["FleetFlight", "FlightLock"]

logger = logging.getLogger("ads_infra.coordination")


class FlightLock:
    """A held lock; :meth:`release` frees it and tells the waiters of every process."""

    def __init__(self, flight: FleetFlight, key: str, lock: Lock) -> None:
        self._flight = flight
        self._key = key
        self._lock = lock

    async def release(self) -> None:
        try:
            await self._lock.release()
        except LockError:
            logger.warning(
                "get_or_set: the lock on %r expired before its owner finished (lock_ttl too "
                "short for this loader?)",
                self._key,
            )
        await self._flight.notify(self._key)


class FleetFlight:
    """Locks and waits for ``get_or_set``; every method may raise a Redis error."""

    def __init__(self, client: Redis, bus: Bus, channel: str, ttl: float) -> None:
        self._client = client
        self._bus = bus
        self._channel = channel
        self._prefix = f"{channel}:lock:"
        self.ttl = ttl
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        bus.on(self._channel, self._landed)

    async def try_lock(self, key: str) -> FlightLock | None:
        lock = Lock(self._client, self._prefix + key, timeout=self.ttl, blocking=False)
        if await lock.acquire():
            return FlightLock(self, key, lock)
        return None

    def expect(self, key: str) -> asyncio.Future[None]:
        """A future done when another process announces ``key``; register before checking."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(future)
        return future

    async def wait(self, key: str, future: asyncio.Future[None]) -> None:
        """Wait for ``future`` (from :meth:`expect`) at most ``lock_ttl`` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(future), self.ttl)
        except TimeoutError:
            pass
        finally:
            waiting = self._waiters.get(key)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiters[key]

    async def notify(self, key: str) -> None:
        self._landed(key)  # this process's own waiters
        await self._bus.publish(self._channel, key)

    def _landed(self, key: str) -> None:
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(None)
