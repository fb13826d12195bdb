"""The manager's remote tier: Redis behind the fallback breaker, memory beside it.

:class:`RemoteTier` takes namespaced keys and codec bytes, like a strategy's
hooks, and decides per call where they go: to Redis while the breaker is
closed, to the in-process store while it is open (recording what must be
deleted on Redis later), and, in two-level mode, to both, so repeat reads
cost no round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ads_infra.cache.base import CacheStrategy
from ads_infra.cache.coherence import Coherence
from ads_infra.cache.fallback import REMOTE_ERRORS, FallbackBreaker, reason
from ads_infra.cache.memory import MemoryCacheStrategy
from ads_infra.cache.stats import CacheStats
from ads_infra.core.settings import CacheConfig

__all__ = ["RemoteTier"]

# These messages have always been logged under the manager's name: log
# configurations that select it keep working.
logger = logging.getLogger("ads_infra.cache.manager")


class RemoteTier:
    """Byte-level cache operations on a remote strategy, with fallback and two-level copies.

    Every operation that is served from memory because the breaker is open
    (or because this call just failed) counts one ``fallbacks`` in ``stats``.
    """

    def __init__(
        self,
        remote: CacheStrategy,
        local: MemoryCacheStrategy,
        breaker: FallbackBreaker,
        config: CacheConfig,
        stats: CacheStats,
    ) -> None:
        self.remote = remote
        self.local = local
        self.breaker = breaker
        self.stats = stats
        self.two_level = config.two_level and config.local_ttl > 0
        self.local_ttl = float(config.local_ttl)
        # Bumped by every write: a two-level read whose reply arrives after a
        # write began keeps it out of the local store, or the value read before
        # the write would be served locally afterwards.
        self._writes = 0
        # Set by CacheManager with a fleet link in two-level mode.
        self.coherence: Coherence | None = None

    def _version(self) -> int:
        coherence = self.coherence
        return self._writes if coherence is None else self._writes + coherence.epoch

    async def get(self, full: str) -> bytes | None:
        if self.two_level:
            data = self.local.lookup(full)
            if data is not None:
                return data
        if self.breaker.up:
            writes = self._version()
            try:
                if not self.two_level:
                    return await self.remote.get_raw(full)
                data, left = await self.remote.get_with_ttl_raw(full)
            except REMOTE_ERRORS as exc:
                self.breaker.failed(exc, "get")
            else:
                if data is not None and writes == self._version():
                    self._keep_local(full, data, left)
                return data
        self.stats.fallbacks += 1
        return self.local.lookup(full)

    async def set(self, full: str, data: bytes, seconds: float) -> bool:
        """False when Redis refused the write (the key then misses, best effort)."""
        self._writes += 1
        if self.breaker.up:
            try:
                await self.remote.set_raw(full, data, seconds)
            except REMOTE_ERRORS as exc:
                if not self.breaker.failed(exc, "set"):
                    await self._drop_refused([full])
                    return False
            else:
                if self.two_level:
                    self.local.store(full, data, self._local_seconds(seconds))
                if self.coherence is not None:
                    await self.coherence.keys([full])
                return True
        self.stats.fallbacks += 1
        self.local.store(full, data, seconds)
        self.breaker.mark_dirty(full)
        return True

    async def exists(self, full: str) -> bool:
        found = self.local.lookup(full) is not None
        if found and self.two_level:
            return True
        if self.breaker.up:
            try:
                return await self.remote.exists_raw(full)
            except REMOTE_ERRORS as exc:
                self.breaker.failed(exc, "exists")
        self.stats.fallbacks += 1
        return found

    async def get_many(self, full: Sequence[str]) -> list[bytes | None]:
        local = self.local
        found: list[bytes | None] = (
            [local.lookup(k) for k in full] if self.two_level else [None] * len(full)
        )
        missing = [i for i, d in enumerate(found) if d is None]
        if not missing:
            return found
        if self.breaker.up:
            writes = self._version()
            try:
                if not self.two_level:  # nothing can have come from the local store
                    return await self.remote.get_many_raw(full)
                wanted = [full[i] for i in missing]
                fetched = await self.remote.get_many_with_ttl_raw(wanted)
            except REMOTE_ERRORS as exc:
                self.breaker.failed(exc, "get_many")
            else:
                keep = writes == self._version()
                for i, (data, left) in zip(missing, fetched, strict=True):
                    found[i] = data
                    if data is not None and keep:
                        self._keep_local(full[i], data, left)
                return found
        self.stats.fallbacks += 1
        return [local.lookup(k) for k in full]

    async def set_many(
        self, items: list[tuple[str, bytes]], seconds: float, tags: list[str] | None = None
    ) -> bool:
        """False when Redis refused the write (the keys then miss, best effort).

        ``tags`` (the keys of tag sets) records the keys under each tag too.
        """
        self._writes += 1
        if self.breaker.up:
            try:
                if tags:
                    await self.remote.set_tagged_raw(items, seconds, tags)
                else:
                    await self.remote.set_many_raw(items, seconds)
            except REMOTE_ERRORS as exc:
                if not self.breaker.failed(exc, "set_many"):
                    await self._drop_refused([key for key, _ in items])
                    return False
            else:
                if self.two_level:
                    self.local.store_many(items, self._local_seconds(seconds))
                if self.coherence is not None:
                    await self.coherence.keys([key for key, _ in items])
                return True
        self.stats.fallbacks += 1
        if tags:  # tagged here too, so invalidating the tag during the outage finds them
            self.local.store_tagged(items, seconds, tags)
        else:
            self.local.store_many(items, seconds)
        for key, _ in items:
            self.breaker.mark_dirty(key)
        return True

    async def delete_tagged(self, tags: list[str]) -> int:
        """Delete the keys recorded under the tag keys ``tags``; how many went."""
        removed, _ = self.local.remove_tagged(tags)  # tagged during an outage
        self._writes += 1
        if self.breaker.up:
            try:
                removed, named = await self.remote.delete_tagged_raw(tags)
            except REMOTE_ERRORS as exc:
                self.breaker.failed(exc, "invalidate_tags")
            else:
                if named:
                    self.local.remove(named)  # two-level copies
                    if self.coherence is not None:
                        await self.coherence.keys(named)
                return removed
        self.stats.fallbacks += 1
        if self.two_level:
            # The copies kept from Redis before the outage: only Redis knows which
            # carry these tags, so none may be served now; what was written
            # meanwhile (tagged in memory, handled above) stays.
            self.local.remove_except(self.breaker.written_during_outage())
        for tag in tags:
            self.breaker.mark_dirty_tag(tag)
        return removed

    async def delete(self, full: list[str]) -> int:
        removed = self.local.remove(full)
        self._writes += 1
        if self.breaker.up:
            try:
                removed = await self.remote.delete_raw(full)
            except REMOTE_ERRORS as exc:
                self.breaker.failed(exc, "delete")
            else:
                if self.coherence is not None:
                    await self.coherence.keys(full)
                return removed
        self.stats.fallbacks += 1
        for key in full:
            self.breaker.mark_dirty(key)
        return removed

    async def delete_pattern(self, pattern: str) -> int:
        """Delete the namespace's keys matching the glob ``pattern``; how many went."""
        prefix = self.remote.prefix
        removed = self.local.remove_matching(prefix, pattern)
        self._writes += 1
        if self.breaker.up:
            try:
                removed = await self.remote.delete_pattern_raw(prefix, pattern)
            except REMOTE_ERRORS as exc:
                self.breaker.failed(exc, "delete_pattern")
            else:
                if self.coherence is not None:
                    await self.coherence.pattern(pattern)
                return removed
        self.stats.fallbacks += 1
        self.breaker.mark_dirty_pattern(pattern)
        return removed

    async def _drop_refused(self, full: list[str]) -> None:
        """After Redis refused a write, make the keys miss rather than read older values."""
        self.local.remove(full)
        try:
            await self.remote.delete_raw(full)  # allowed even at maxmemory
        except REMOTE_ERRORS as exc:
            logger.warning(
                "cache: %s refused a write and the delete after it (%s); %d key(s) may "
                "read older values until they expire",
                self.remote.backend,
                reason(exc),
                len(full),
            )

    def _keep_local(self, full: str, data: bytes, left: float) -> None:
        """Two-level: keep a copy for local_ttl, or less if Redis expires it sooner."""
        if left > 0:
            self.local.store(full, data, min(self.local_ttl, left))

    def _local_seconds(self, seconds: float) -> float:
        return min(seconds, self.local_ttl) if seconds else self.local_ttl
