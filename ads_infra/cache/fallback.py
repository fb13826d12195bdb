"""The fallback breaker: keeps a failing Redis away from callers, then hands back to it.

With ``fallback_enabled``, the first connection error or timeout opens the
breaker: calls are answered from the in-process store and never wait on
Redis. A background probe pings Redis with a growing back-off; once it
answers, whatever was written or deleted meanwhile is deleted on Redis
(so Redis never serves a value older than what the app wrote), the
in-process store is dropped and the breaker closes. Without fallback every
remote error is raised as :class:`~ads_infra.errors.CacheError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Set as AbstractSet

from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)

from ads_infra.cache.base import CacheStrategy
from ads_infra.cache.memory import MemoryCacheStrategy
from ads_infra.cache.stats import CacheStats
from ads_infra.core.errors import CacheError
from ads_infra.core.settings import CacheConfig

__all__ = ["REMOTE_ERRORS", "FallbackBreaker", "reason"]

# These messages have always been logged under the manager's name: log
# configurations that select it keep working.
logger = logging.getLogger("ads_infra.cache.manager")

# What a remote backend raises. Serialization errors are the caller's and are
# not among them.
REMOTE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
# A command-level error (WRONGTYPE on a foreign key, ...) says nothing about
# availability: it fails that one call and leaves the breaker closed. These
# ResponseErrors, though, mean the server cannot serve right now.
_UNAVAILABLE_REPLIES = (BusyLoadingError, ReadOnlyError, ClusterDownError, TryAgainError)

_DELETE_BATCH = 1000


def reason(exc: BaseException) -> str:
    """An error's type and the first line of its message, for one log line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class FallbackBreaker:
    """Outage detection, the probe loop, dirty-key tracking and the reconcile.

    ``up`` is False while Redis is bypassed; the manager's remote paths read it
    on every call and report failures to :meth:`failed`. What they change
    while it is down they report to :meth:`mark_dirty` /
    :meth:`mark_dirty_pattern`, and the breaker deletes it on Redis before
    closing again.
    """

    def __init__(
        self,
        remote: CacheStrategy,
        local: MemoryCacheStrategy,
        config: CacheConfig,
        stats: CacheStats,
    ) -> None:
        self.remote = remote
        self.local = local
        self.stats = stats
        self.enabled = config.fallback_enabled
        self.up = True
        self._probe_interval = config.fallback_probe_interval
        self._probe_max_interval = config.fallback_probe_max_interval
        self._probe_task: asyncio.Task[None] | None = None
        # What changed while Redis was away; deleted on Redis before going back.
        self._dirty_keys: set[str] = set()
        self._dirty_patterns: list[str] = []
        self._dirty_tags: set[str] = set()
        self._dirty_overflow = False

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Ping Redis: fail fast, or (with fallback) open the breaker and probe."""
        if not self.up:  # closed during an outage: probe (and reconcile) first
            self._start_probe()
            return
        try:
            await self.remote.ping()
        except REMOTE_ERRORS as exc:
            self.failed(exc, "start")

    async def close(self) -> None:
        """Stop the probe; during an outage, try once more to reconcile."""
        task, self._probe_task = self._probe_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self.up:
            # If Redis is still away the breaker stays open, and start() probes
            # again, so a manager used after close() never reads what was
            # overwritten during the outage.
            with contextlib.suppress(*REMOTE_ERRORS):
                async with asyncio.timeout(self._probe_interval):
                    await self.remote.ping()
                    await self._reconcile()
                    self._back_on_remote()

    # --- what the remote paths report ---------------------------------------------

    def failed(self, exc: BaseException, operation: str) -> bool:
        """Count a remote failure; open the breaker (fallback) or raise CacheError.

        False when the server answered but refused this one command: the
        breaker stays closed and the caller decides what the refusal means.
        """
        self.stats.errors += 1
        remote = self.remote
        if not self.enabled:
            raise CacheError(
                f"cache {operation} failed on {remote.backend} at {remote.target}: "
                f"{reason(exc)}; check that the server is running and reachable, or set "
                "cache.fallback_enabled to serve from memory meanwhile"
            ) from None
        if isinstance(exc, ResponseError) and not isinstance(exc, _UNAVAILABLE_REPLIES):
            logger.warning(
                "cache: %s refused a %s (%s); answering from memory for this call",
                remote.backend,
                operation,
                reason(exc),
            )
            return False
        if self.up:
            self.up = False
            logger.warning(
                "cache: %s at %s failed during %s (%s); serving from memory and probing it "
                "again in %.1fs",
                remote.backend,
                remote.target,
                operation,
                reason(exc),
                self._probe_interval,
            )
            self._start_probe()
        return True

    def mark_dirty(self, full: str) -> None:
        """``full`` was written or deleted in memory only: delete it on Redis on return."""
        if "*" in self._dirty_patterns:
            return  # the whole namespace is cleared on return anyway
        if len(self._dirty_keys) < self.local.max_size:
            self._dirty_keys.add(full)
        else:
            # Too many to track: clear the namespace on Redis when it returns,
            # rather than let some keys serve what was overwritten meanwhile.
            self._dirty_keys.clear()
            self._dirty_patterns.append("*")
            self._dirty_overflow = True

    def written_during_outage(self) -> AbstractSet[str]:
        """The keys written or deleted in memory only (empty once too many to track)."""
        return self._dirty_keys

    def mark_dirty_pattern(self, pattern: str) -> None:
        """A pattern was invalidated in memory only: invalidate it on Redis on return."""
        if pattern not in self._dirty_patterns:
            self._dirty_patterns.append(pattern)

    def mark_dirty_tag(self, tag: str) -> None:
        """A tag (its set's key) was invalidated in memory only: invalidate it on Redis later."""
        if "*" in self._dirty_patterns:
            return
        if len(self._dirty_tags) < self.local.max_size:
            self._dirty_tags.add(tag)
        else:  # too many to track, as in mark_dirty
            self._dirty_tags.clear()
            self._dirty_keys.clear()
            self._dirty_patterns.append("*")
            self._dirty_overflow = True

    # --- the probe and the return -----------------------------------------------------

    def _start_probe(self) -> None:
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.get_running_loop().create_task(
                self._probe(), name="ads-infra cache probe"
            )

    async def _probe(self) -> None:
        """Ping the remote with a growing back-off; go back to it once it answers."""
        delay = self._probe_interval
        while True:
            await asyncio.sleep(delay)
            try:
                await self.remote.ping()
                await self._reconcile()
            except Exception as exc:  # the probe must outlive any failure, or fallback is forever
                delay = min(delay * 2, self._probe_max_interval)
                logger.debug("cache: %s still unavailable (%s)", self.remote.backend, reason(exc))
                continue
            break
        self._back_on_remote()

    def _back_on_remote(self) -> None:
        # The fallback store is not shared with other processes: drop it, and let
        # the keys reconciled on Redis miss once and refill from their source.
        self.local.purge()
        self.up = True
        logger.warning(
            "cache: %s at %s answers again; back on it", self.remote.backend, self.remote.target
        )

    async def _reconcile(self) -> None:
        """Delete on Redis what changed while it was away, so it serves nothing stale."""
        remote = self.remote
        while self._dirty_keys or self._dirty_patterns or self._dirty_tags:
            keys, self._dirty_keys = list(self._dirty_keys), set()
            patterns, self._dirty_patterns = self._dirty_patterns, []
            tags, self._dirty_tags = list(self._dirty_tags), set()
            try:
                for start in range(0, len(keys), _DELETE_BATCH):
                    await remote.delete_raw(keys[start : start + _DELETE_BATCH])
                for pattern in patterns:
                    await remote.delete_pattern_raw(remote.prefix, pattern)
                if tags and "*" not in patterns:
                    await remote.delete_tagged_raw(tags)
            except BaseException:
                self._dirty_keys.update(keys)
                self._dirty_patterns.extend(p for p in patterns if p not in self._dirty_patterns)
                self._dirty_tags.update(tags)
                raise
        if self._dirty_overflow:
            self._dirty_overflow = False
            logger.warning(
                "cache: more keys changed while %s was away than could be tracked "
                "(max_size); cleared the namespace there instead",
                remote.backend,
            )
