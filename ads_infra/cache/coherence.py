"""Two-level coherence across processes: announce writes, drop others' local copies.

With ``two_level`` each process keeps memory copies of what it read from
Redis for ``local_ttl`` seconds. On its own that means another process's
write is not seen here until the copy expires. With a fleet link, every
write or delete is announced on the bus after Redis has it, and every other
process drops its local copies of those keys (a pattern delete drops the
matching ones). When the subscription drops, announcements may have been
missed, so every local copy is dropped, not trusted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ads_infra.cache.fallback import FallbackBreaker
from ads_infra.cache.fleet import Invalidations
from ads_infra.cache.memory import MemoryCacheStrategy

__all__ = ["Coherence"]

logger = logging.getLogger("ads_infra.cache.manager")

_SEP = "\x00"  # between keys in one announcement: never part of a key we write
# Keys per announcement: a million-key delete in one message would pass Redis's
# pub/sub output-buffer limit (32 MB by default) and disconnect every subscriber.
MAX_KEYS_PER_MESSAGE = 1000


class Coherence:
    """Sends and applies the invalidations of one namespace's two-level copies."""

    def __init__(
        self,
        local: MemoryCacheStrategy,
        breaker: FallbackBreaker,
        prefix: str,
        bus: Invalidations,
        channel: str,
    ) -> None:
        self._local = local
        self._breaker = breaker
        self._prefix = prefix
        self._bus = bus
        self._channel = channel
        self._failing = False
        # Bumped on every change applied here: RemoteTier compares it like its
        # own write count, so a read in flight during one is not kept locally.
        self.epoch = 0
        bus.on(channel, self._received)
        bus.on_reset(self.drop_all)

    async def keys(self, full: Sequence[str]) -> None:
        for start in range(0, len(full), MAX_KEYS_PER_MESSAGE):
            await self._send("k" + _SEP.join(full[start : start + MAX_KEYS_PER_MESSAGE]))

    async def pattern(self, pattern: str) -> None:
        await self._send("p" + pattern)

    async def _send(self, payload: str) -> None:
        try:
            await self._bus.publish(self._channel, payload)
        except Exception as exc:  # the others drop everything on their own disconnect
            if not self._failing:
                self._failing = True
                logger.warning("cache: announcing a write failed (%s)", type(exc).__name__)
        else:
            self._failing = False

    def _received(self, payload: str) -> None:
        self.epoch += 1
        kind, body = payload[:1], payload[1:]
        if kind == "k":
            self._local.remove(body.split(_SEP))
        elif kind == "p":
            self._local.remove_matching(self._prefix, body)

    def drop_all(self) -> None:
        """Forget every two-level copy (while Redis serves; in fallback memory is the cache)."""
        self.epoch += 1
        if self._breaker.up:
            self._local.purge()
