"""CacheManager: the one object host code talks to for caching.

It owns what every backend shares: statistics, the Redis fallback breaker,
the optional two-level mode (memory in front of Redis) and single-flight
``get_or_set``. Namespacing and serialization come from the strategy
(:class:`~ads_infra.cache.base.CacheStrategy`); the manager calls the
strategy's byte-level hooks directly so each call crosses as few layers as
possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from time import monotonic, perf_counter
from typing import Any, TypeVar, cast

import orjson
from orjson import JSONDecodeError
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)

from ads_infra.cache.backends import build_strategy
from ads_infra.cache.base import MAX_TTL, CacheStrategy, expiry_seconds
from ads_infra.cache.memory import MemoryCacheStrategy
from ads_infra.cache.stats import CacheStats
from ads_infra.config import CacheConfig
from ads_infra.errors import CacheError
from ads_infra.health import HealthStatus

__all__ = ["CacheManager"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What a remote backend raises. Serialization errors are the caller's and are
# not among them.
REMOTE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
# A command-level error (WRONGTYPE on a foreign key, ...) says nothing about
# availability: it fails that one call and leaves the breaker closed. These
# ResponseErrors, though, mean the server cannot serve right now.
_UNAVAILABLE_REPLIES = (BusyLoadingError, ReadOnlyError, ClusterDownError, TryAgainError)

_MISSING: Any = object()
_NEVER = math.inf
_DELETE_BATCH = 1000


class CacheManager:
    """The seed's cache API over any strategy, with stats, fallback and single flight.

    >>> cache = CacheManager()                        # memory, on defaults
    >>> await cache.set("ad:1", {"headline": "Hi"}, ttl=600)
    >>> await cache.get("ad:1")
    {'headline': 'Hi'}
    >>> await cache.get_or_set("ad:2", load_ad, ttl=60)   # load_ad runs once per miss

    ``strategy`` is the backend to use (the container injects its Selector's
    choice); without one it is built from ``config.cache_type`` by
    :func:`~ads_infra.cache.backends.build_strategy`. With a remote
    backend and ``fallback_enabled``, Redis errors never reach the caller: the
    manager serves from memory, counts a fallback per operation, and a
    background probe returns it to Redis once Redis answers.
    """

    def __init__(
        self, config: CacheConfig | None = None, strategy: CacheStrategy | None = None
    ) -> None:
        if config is None:
            config = strategy.config if strategy is not None else CacheConfig()
        self.config = config
        self.strategy = strategy if strategy is not None else build_strategy(config)
        self.backend = self.strategy.backend
        self.stats = CacheStats()
        # Copied to attributes once: the hot path reads no config.
        self._prefix = self.strategy.prefix
        self._codec = self.strategy.codec
        self._default_ttl = float(config.default_ttl)
        self._remote: CacheStrategy | None
        if isinstance(self.strategy, MemoryCacheStrategy):
            self._local = self.strategy
            self._remote = None
        else:
            self._local = MemoryCacheStrategy(config)
            self._remote = self.strategy
        # Memory fast path: bound once, called without attribute chains.
        self._lookup = self._local.lookup
        self._entries = self._local.entries
        self._loads: Callable[[bytes], Any] = (
            orjson.loads if self._codec.serializer == "json" else self._codec.decode
        )
        self._dumps: Callable[[Any], bytes] = (
            orjson.dumps if self._codec.plain_json else self._codec.encode
        )
        self._timed = bool(config.stats_enabled and self._remote is not None)
        self._two_level = config.two_level and self._remote is not None and config.local_ttl > 0
        self._local_ttl = float(config.local_ttl)
        # Bumped by every write through this manager: a two-level read whose
        # reply arrives after a write began keeps it out of the local store, or
        # the value read before the write would be served locally afterwards.
        self._writes = 0
        self._fallback = config.fallback_enabled
        self._remote_up = True
        self._probe_task: asyncio.Task[None] | None = None
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        # What changed while Redis was away; replayed on Redis before going back.
        self._dirty_keys: set[str] = set()
        self._dirty_patterns: list[str] = []
        self._dirty_overflow = False

    def __repr__(self) -> str:
        return f"CacheManager(backend={self.backend!r}, target={self.strategy.target!r})"

    @property
    def in_fallback(self) -> bool:
        """True while a failed remote backend is bypassed for memory."""
        return not self._remote_up

    @property
    def active_backend(self) -> str:
        return self.backend if self._remote_up else "memory"

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Ping the remote backend: fail fast, or (with fallback) log and serve from memory."""
        if self._remote is None:
            return
        if not self._remote_up:  # closed during an outage: probe (and reconcile) first
            self._start_probe()
            return
        try:
            await self._remote.ping()
        except REMOTE_ERRORS as exc:
            self._remote_failed(exc, "start")

    async def close(self) -> None:
        """Stop the probe and release the connection pool (``aclose()``)."""
        task, self._probe_task = self._probe_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._remote_up and self._remote is not None:
            # One last try at handing the outage's changes to Redis; if it is
            # still away the breaker stays open, and start() probes again, so a
            # manager used after close() never reads what was overwritten.
            with contextlib.suppress(*REMOTE_ERRORS):
                async with asyncio.timeout(self.config.fallback_probe_interval):
                    await self._remote.ping()
                    await self._reconcile(self._remote)
                    self._back_on_remote()
        await self.strategy.close()

    async def health_check(self) -> HealthStatus:
        if self._remote is None:
            return HealthStatus(
                component="cache",
                backend=self.backend,
                healthy=True,
                latency_ms=0.0,
                detail=f"{len(self._local)} of {self._local.max_size} entries",
                target=self.strategy.target,
            )
        started = perf_counter()
        try:
            await self._remote.ping()
        except REMOTE_ERRORS as exc:
            detail = f"unreachable: {_reason(exc)}"
            if self._fallback:
                detail += "; serving from memory until it answers"
            healthy, latency = False, None
        else:
            detail = "" if self._remote_up else "answers again; leaving fallback"
            healthy, latency = True, (perf_counter() - started) * 1000
        return HealthStatus(
            component="cache",
            backend=self.backend,
            healthy=healthy,
            latency_ms=latency,
            detail=detail,
            target=self.strategy.target,
        )

    async def get_stats(self) -> dict[str, Any]:
        """Counters, hit rate, mean latency, and which backend is serving."""
        stats = self.stats.to_dict()
        stats.update(
            backend=self.backend,
            active_backend=self.active_backend,
            in_fallback=not self._remote_up,
            evictions=self._local.evictions,
            local_entries=len(self._local),
            max_size=self._local.max_size,
        )
        return stats

    # --- single-key operations ------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` when absent or expired."""
        if self._remote is not None:
            return await self._remote_get_value(key, default)
        # MemoryCacheStrategy.lookup, inlined: a call frame is a fifth of a hit.
        item = self._entries.get(key)  # a hit is now the most recently used
        if item is not None and (item[0] == _NEVER or item[0] > monotonic()):
            self.stats.hits += 1
            loads = self._loads  # a local: see set()
            try:
                return loads(item[1])
            except JSONDecodeError:  # a marked payload (compressed, msgpack, pickle)
                return self._codec.decode(item[1])
        if item is not None:
            self._lookup(key)  # drops and counts the expired entry
        self.stats.misses += 1
        return default

    async def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` for ``ttl`` seconds (None: default_ttl, 0: no expiry)."""
        seconds = self._default_ttl if ttl is None else ttl
        if seconds > 0 and self._remote is None:
            # A local: a method call on an instance attribute does not specialize.
            dumps = self._dumps
            try:
                data = dumps(value)
            except TypeError:
                data = self._codec.encode(value)  # raises CacheSerializationError
            # MemoryCacheStrategy.store, inlined: on this path a call frame costs as
            # much as the store itself (LRU order and eviction happen in C).
            self._entries[key] = (monotonic() + seconds, data)
            self.stats.sets += 1
            return True
        return await self._set_other(key, value, seconds)

    async def _set_other(self, key: str, value: Any, seconds: float) -> bool:
        """``set`` on a remote backend, without expiry (0), or with a bad TTL."""
        if not 0 <= seconds <= MAX_TTL:
            seconds = expiry_seconds(seconds, 0)  # inf: no expiry; raises on the others
        if self._remote is None:
            self._local.store(key, self._codec.encode(value), seconds)
            self.stats.sets += 1
            return True
        return await self._remote_set_value(key, value, seconds)

    async def _remote_get_value(self, key: str, default: Any) -> Any:
        started = perf_counter() if self._timed else 0.0
        data = await self._remote_get(self._prefix + key)
        stats = self.stats
        if data is None:
            stats.misses += 1
            value = default
        else:
            stats.hits += 1
            value = self._codec.decode(data)
        if started:
            stats.timed_operations += 1
            stats.latency_seconds += perf_counter() - started
        return value

    async def _remote_set_value(self, key: str, value: Any, seconds: float) -> bool:
        started = perf_counter() if self._timed else 0.0
        stored = await self._remote_set(self._prefix + key, self._codec.encode(value), seconds)
        stats = self.stats
        stats.sets += stored
        if started:
            stats.timed_operations += 1
            stats.latency_seconds += perf_counter() - started
        return stored

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""
        started = perf_counter() if self._timed else 0.0
        removed = await self._delete([self._prefix + key])
        self._count_delete(removed, started)
        return removed > 0

    async def exists(self, key: str) -> bool:
        started = perf_counter() if self._timed else 0.0
        full = self._prefix + key
        found = self._local.lookup(full) is not None
        if self._remote is not None and not (found and self._two_level):
            if self._remote_up:
                try:
                    found = await self._remote.exists_raw(full)
                except REMOTE_ERRORS as exc:
                    self._remote_failed(exc, "exists")
                    self.stats.fallbacks += 1
            else:
                self.stats.fallbacks += 1
        self._timed_op(started)
        return found

    # --- multi-key operations ---------------------------------------------------------

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present (absent keys are left out)."""
        started = perf_counter() if self._timed else 0.0
        wanted = list(keys)
        prefix = self._prefix
        full = [prefix + k for k in wanted]
        found = await self._get_many_raw(full)
        decode = self._codec.decode
        result = {k: decode(d) for k, d in zip(wanted, found, strict=True) if d is not None}
        stats = self.stats
        stats.hits += len(result)
        stats.misses += len(wanted) - len(result)
        self._timed_op(started)
        return result

    async def set_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> bool:
        """Store every item of ``mapping`` (pipelined on Redis).

        False when Redis refused the write (out of memory, ...): none of the
        keys then holds an older value (they are deleted, best effort).
        """
        started = perf_counter() if self._timed else 0.0
        seconds = self._default_ttl if ttl is None else expiry_seconds(ttl, 0)
        encode, prefix = self._codec.encode, self._prefix
        items = [(prefix + k, encode(v)) for k, v in mapping.items()]
        stored = await self._set_many_raw(items, seconds)
        if stored:
            self.stats.sets += len(items)
        self._timed_op(started)
        return stored

    async def delete_many(self, keys: Iterable[str]) -> int:
        started = perf_counter() if self._timed else 0.0
        removed = await self._delete([self._prefix + k for k in keys])
        self._count_delete(removed, started)
        return removed

    async def invalidate_pattern(self, pattern: str) -> int:
        """Delete every key of the namespace matching the glob ``pattern`` (``"ad:*"``).

        On Redis this is SCAN + UNLINK in batches, never KEYS. Returns how
        many keys were deleted.
        """
        started = perf_counter() if self._timed else 0.0
        removed = self._local.remove_matching(self._prefix, pattern)
        if self._remote is not None:
            self._writes += 1
            if self._remote_up:
                try:
                    removed = await self._remote.delete_pattern_raw(self._prefix, pattern)
                except REMOTE_ERRORS as exc:
                    self._remote_failed(exc, "delete_pattern")
                    self._record_pattern(pattern)
            else:
                self._record_pattern(pattern)
        self._count_delete(removed, started)
        return removed

    delete_pattern = invalidate_pattern

    async def clear(self) -> int:
        """Delete every key of this namespace (and nothing else)."""
        return await self.invalidate_pattern("*")

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], T | Awaitable[T]],
        ttl: float | None = None,
    ) -> T:
        """The cached value of ``key``, or ``factory()``'s result, cached for ``ttl``.

        Single flight: concurrent callers of one key share one lookup and at
        most one factory call; the others await its result (or its error).
        """
        inflight = self._inflight
        while (flight := inflight.get(key)) is not None:
            try:
                return cast(T, await asyncio.shield(flight))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not flight.cancelled() or (task is not None and task.cancelling()):
                    raise  # we were cancelled (perhaps with the owner): do not take over
        flight = asyncio.get_running_loop().create_future()
        inflight[key] = flight
        try:
            value: Any = await self.get(key, _MISSING)
            if value is _MISSING:
                produced = factory()
                value = await produced if inspect.isawaitable(produced) else produced
                await self.set(key, value, ttl)
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            flight.set_result(value)
        finally:
            if inflight.get(key) is flight:
                del inflight[key]
        return cast(T, value)

    # --- remote paths: breaker and two-level ------------------------------------------

    async def _remote_get(self, full: str) -> bytes | None:
        remote = self._remote
        assert remote is not None
        if self._two_level:
            data = self._local.lookup(full)
            if data is not None:
                return data
        if self._remote_up:
            writes = self._writes
            try:
                if not self._two_level:
                    return await remote.get_raw(full)
                data, left = await remote.get_with_ttl_raw(full)
            except REMOTE_ERRORS as exc:
                self._remote_failed(exc, "get")
            else:
                if data is not None and writes == self._writes:
                    self._keep_local(full, data, left)
                return data
        self.stats.fallbacks += 1
        return self._local.lookup(full)

    async def _remote_set(self, full: str, data: bytes, seconds: float) -> bool:
        remote = self._remote
        assert remote is not None
        self._writes += 1
        if self._remote_up:
            try:
                await remote.set_raw(full, data, seconds)
            except REMOTE_ERRORS as exc:
                if not self._remote_failed(exc, "set"):
                    await self._drop_refused([full])
                    return False
            else:
                if self._two_level:
                    self._local.store(full, data, self._local_seconds(seconds))
                return True
        self.stats.fallbacks += 1
        self._local.store(full, data, seconds)
        self._mark_dirty(full)
        return True

    async def _get_many_raw(self, full: Sequence[str]) -> list[bytes | None]:
        local = self._local
        if self._remote is None:
            return [local.lookup(k) for k in full]
        found: list[bytes | None] = (
            [local.lookup(k) for k in full] if self._two_level else [None] * len(full)
        )
        missing = [i for i, d in enumerate(found) if d is None]
        if not missing:
            return found
        if self._remote_up:
            writes = self._writes
            try:
                if not self._two_level:  # nothing can have come from the local store
                    return await self._remote.get_many_raw(full)
                wanted = [full[i] for i in missing]
                fetched = await self._remote.get_many_with_ttl_raw(wanted)
            except REMOTE_ERRORS as exc:
                self._remote_failed(exc, "get_many")
            else:
                keep = writes == self._writes
                for i, (data, left) in zip(missing, fetched, strict=True):
                    found[i] = data
                    if data is not None and keep:
                        self._keep_local(full[i], data, left)
                return found
        self.stats.fallbacks += 1
        return [local.lookup(k) for k in full]

    async def _set_many_raw(self, items: list[tuple[str, bytes]], seconds: float) -> bool:
        local = self._local
        if self._remote is None:
            for key, data in items:
                local.store(key, data, seconds)
            return True
        self._writes += 1
        if self._remote_up:
            try:
                await self._remote.set_many_raw(items, seconds)
            except REMOTE_ERRORS as exc:
                if not self._remote_failed(exc, "set_many"):
                    await self._drop_refused([key for key, _ in items])
                    return False
            else:
                if self._two_level:
                    local_seconds = self._local_seconds(seconds)
                    for key, data in items:
                        local.store(key, data, local_seconds)
                return True
        self.stats.fallbacks += 1
        for key, data in items:
            local.store(key, data, seconds)
            self._mark_dirty(key)
        return True

    async def _drop_refused(self, full: list[str]) -> None:
        """After Redis refused a write, make the keys miss rather than read older values."""
        self._local.remove(full)
        assert self._remote is not None
        try:
            await self._remote.delete_raw(full)  # allowed even at maxmemory
        except REMOTE_ERRORS as exc:
            logger.warning(
                "cache: %s refused a write and the delete after it (%s); %d key(s) may "
                "read older values until they expire",
                self.backend,
                _reason(exc),
                len(full),
            )

    async def _delete(self, full: list[str]) -> int:
        removed = self._local.remove(full)
        if self._remote is None:
            return removed
        self._writes += 1
        if self._remote_up:
            try:
                return await self._remote.delete_raw(full)
            except REMOTE_ERRORS as exc:
                self._remote_failed(exc, "delete")
        self.stats.fallbacks += 1
        for key in full:
            self._mark_dirty(key)
        return removed

    def _keep_local(self, full: str, data: bytes, left: float) -> None:
        """Two-level: keep a copy for local_ttl, or less if Redis expires it sooner."""
        if left > 0:
            self._local.store(full, data, min(self._local_ttl, left))

    def _local_seconds(self, seconds: float) -> float:
        return min(seconds, self._local_ttl) if seconds else self._local_ttl

    def _count_delete(self, removed: int, started: float) -> None:
        self.stats.deletes += removed
        self._timed_op(started)

    def _timed_op(self, started: float) -> None:
        if started:
            stats = self.stats
            stats.timed_operations += 1
            stats.latency_seconds += perf_counter() - started

    # --- the breaker ----------------------------------------------------------------

    def _remote_failed(self, exc: BaseException, operation: str) -> bool:
        """Count a remote failure; open the breaker (fallback) or raise CacheError.

        False when the server answered but refused this one command: the
        breaker stays closed and the caller decides what the refusal means.
        """
        self.stats.errors += 1
        if not self._fallback:
            raise CacheError(
                f"cache {operation} failed on {self.backend} at {self.strategy.target}: "
                f"{_reason(exc)}; check that the server is running and reachable, or set "
                "cache.fallback_enabled to serve from memory meanwhile"
            ) from None
        if isinstance(exc, ResponseError) and not isinstance(exc, _UNAVAILABLE_REPLIES):
            logger.warning(
                "cache: %s refused a %s (%s); answering from memory for this call",
                self.backend,
                operation,
                _reason(exc),
            )
            return False
        if self._remote_up:
            self._remote_up = False
            logger.warning(
                "cache: %s at %s failed during %s (%s); serving from memory and probing it "
                "again in %.1fs",
                self.backend,
                self.strategy.target,
                operation,
                _reason(exc),
                self.config.fallback_probe_interval,
            )
            self._start_probe()
        return True

    def _start_probe(self) -> None:
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.get_running_loop().create_task(
                self._probe(), name="ads-infra cache probe"
            )

    def _mark_dirty(self, full: str) -> None:
        if "*" in self._dirty_patterns:
            return  # the whole namespace is cleared on return anyway
        if len(self._dirty_keys) < self._local.max_size:
            self._dirty_keys.add(full)
        else:
            # Too many to track: clear the namespace on Redis when it returns,
            # rather than let some keys serve what was overwritten meanwhile.
            self._dirty_keys.clear()
            self._dirty_patterns.append("*")
            self._dirty_overflow = True

    def _record_pattern(self, pattern: str) -> None:
        self.stats.fallbacks += 1
        if pattern not in self._dirty_patterns:
            self._dirty_patterns.append(pattern)

    async def _probe(self) -> None:
        """Ping the remote with a growing back-off; go back to it once it answers."""
        remote = self._remote
        assert remote is not None
        delay = self.config.fallback_probe_interval
        while True:
            await asyncio.sleep(delay)
            try:
                await remote.ping()
                await self._reconcile(remote)
            except Exception as exc:  # the probe must outlive any failure, or fallback is forever
                delay = min(delay * 2, self.config.fallback_probe_max_interval)
                logger.debug("cache: %s still unavailable (%s)", self.backend, _reason(exc))
                continue
            break
        self._back_on_remote()

    def _back_on_remote(self) -> None:
        # The fallback store is not shared with other processes: drop it, and let
        # the keys reconciled on Redis miss once and refill from their source.
        self._local.purge()
        self._remote_up = True
        logger.warning(
            "cache: %s at %s answers again; back on it", self.backend, self.strategy.target
        )

    async def _reconcile(self, remote: CacheStrategy) -> None:
        """Delete on Redis what changed while it was away, so it serves nothing stale."""
        while self._dirty_keys or self._dirty_patterns:
            keys, self._dirty_keys = list(self._dirty_keys), set()
            patterns, self._dirty_patterns = self._dirty_patterns, []
            try:
                for start in range(0, len(keys), _DELETE_BATCH):
                    await remote.delete_raw(keys[start : start + _DELETE_BATCH])
                for pattern in patterns:
                    await remote.delete_pattern_raw(self._prefix, pattern)
            except BaseException:
                self._dirty_keys.update(keys)
                self._dirty_patterns.extend(p for p in patterns if p not in self._dirty_patterns)
                raise
        if self._dirty_overflow:
            self._dirty_overflow = False
            logger.warning(
                "cache: more keys changed while %s was away than could be tracked "
                "(max_size); cleared the namespace there instead",
                self.backend,
            )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
