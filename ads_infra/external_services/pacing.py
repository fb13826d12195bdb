"""This process's pacing of one upstream: one call every ``spacing`` seconds, no burst.

What ``AsyncLimiter(1, spacing)`` did, with a synchronous fast path: each
caller reserves the next free slot (virtual scheduling, as the fleet's Redis
pacer does) and sleeps until it, so callers go first come, first served and
no window of ``rate_period`` holds more than ``rate_limit`` calls. A caller
whose slot is free now takes it with :meth:`LocalPacer.try_take`, without
awaiting anything: on the request path that is nearly every call, and an
awaited ``acquire()`` per call was a visible part of the manager's cost.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["LocalPacer"]


class LocalPacer:
    """Paces calls ``spacing`` seconds apart, in the order they ask."""

    __slots__ = ("_next", "spacing")

    def __init__(self, spacing: float) -> None:
        self.spacing = spacing
        self._next = float("-inf")  # monotonic time of the next free slot

    def try_take(self) -> bool:
        """Take the slot if it is free now (nobody is queued): True; else take nothing."""
        now = time.monotonic()
        if self._next <= now:
            self._next = now + self.spacing
            return True
        return False

    async def acquire(self) -> None:
        """Reserve the next free slot and wait for it.

        A caller cancelled while waiting leaves its slot unused: the upstream
        sees fewer calls for a moment, never more.
        """
        now = time.monotonic()
        slot = self._next
        if slot <= now:
            self._next = now + self.spacing
            return
        self._next = slot + self.spacing
        await asyncio.sleep(slot - now)
