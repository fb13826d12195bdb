"""What the cache needs from a fleet of processes (``coordination.backend: redis``).

``ads_infra.coordination.Coordinator`` provides it; the container passes it
in, and this package never imports that one. Two guarantees use it:

- ``get_or_set`` single flight across processes (:class:`Flight`): one
  process holds the key's lock and loads; the others wait for its notice
  and read the value it stored;
- two-level coherence (:class:`Invalidations`): every write or delete is
  announced, and the other processes drop their local copies of those keys;
  when the announcements may have been missed (the subscription dropped),
  they drop every local copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

__all__ = ["CacheFleet", "Flight", "FlightLock", "Invalidations"]


class FlightLock(Protocol):
    async def release(self) -> None: ...


class Flight(Protocol):
    ttl: float

    async def try_lock(self, key: str) -> FlightLock | None: ...

    def expect(self, key: str) -> asyncio.Future[None]: ...

    async def wait(self, key: str, future: asyncio.Future[None]) -> None: ...


class Invalidations(Protocol):
    def on(self, channel: str, handler: Callable[[str], None]) -> None: ...

    def on_reset(self, callback: Callable[[], None]) -> None: ...

    async def publish(self, channel: str, payload: str) -> None: ...


class CacheFleet(Protocol):
    @property
    def flight(self) -> Flight: ...

    @property
    def bus(self) -> Invalidations: ...

    @property
    def invalidation_channel(self) -> str: ...
