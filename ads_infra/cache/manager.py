"""CacheManager: the one object host code talks to for caching.

It is the value-level API every backend shares: namespaced keys, the codec,
statistics, single-flight ``get_or_set`` and the lifecycle. The parts it
composes do the rest: the strategy (:mod:`ads_infra.cache.base`) talks to the
backend; with a remote backend, :class:`~ads_infra.cache.remote.RemoteTier`
routes each call between Redis and the in-process store, and
:class:`~ads_infra.cache.fallback.FallbackBreaker` decides when Redis is
bypassed and hands back to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from time import perf_counter
from typing import Any, TypeVar, cast

from ads_infra.cache.backends import build_strategy
from ads_infra.cache.base import MAX_TTL, CacheStrategy, expiry_seconds, tag_keys
from ads_infra.cache.coherence import Coherence
from ads_infra.cache.fallback import REMOTE_ERRORS, FallbackBreaker, reason
from ads_infra.cache.fleet import CacheFleet, Flight
from ads_infra.cache.memory import MemoryCacheStrategy, MemoryGet, MemorySet
from ads_infra.cache.remote import RemoteTier
from ads_infra.cache.stats import CacheStats
from ads_infra.core.errors import RestartRequiredError
from ads_infra.core.health import HealthStatus
from ads_infra.core.loader import environment_settings
from ads_infra.core.settings import CacheConfig

__all__ = ["CacheManager"]

T = TypeVar("T")

_MISSING: Any = object()


class CacheManager:
    """The seed's cache API over any strategy, with stats, fallback and single flight.

    >>> cache = CacheManager()                        # memory, on defaults
    >>> await cache.set("ad:1", {"headline": "Hi"}, ttl=600)
    >>> await cache.get("ad:1")
    {'headline': 'Hi'}
    >>> await cache.get_or_set("ad:2", load_ad, ttl=60)   # load_ad runs once per miss
    >>> await cache.set("ad:3", ad, tags=["user:7"])
    >>> await cache.invalidate_tags("user:7")           # drops ad:3, whatever else is cached

    ``strategy`` is the backend to use (the container injects its Selector's
    choice); without one it is built from ``config.cache_type`` by
    :func:`~ads_infra.cache.backends.build_strategy`. With a remote
    backend and ``fallback_enabled``, Redis errors never reach the caller: the
    manager serves from memory, counts a fallback per operation, and a
    background probe returns it to Redis once Redis answers.
    """

    def __init__(
        self,
        config: CacheConfig | None = None,
        strategy: CacheStrategy | None = None,
        *,
        fleet: CacheFleet | None = None,
    ) -> None:
        if config is None:
            config = strategy.config if strategy is not None else environment_settings().cache
        self.config = config
        self.strategy = strategy if strategy is not None else build_strategy(config)
        self.backend = self.strategy.backend
        self.stats = CacheStats()
        # Copied to attributes once: the hot path reads no config.
        self._prefix = self.strategy.prefix
        self._codec = self.strategy.codec
        self._default_ttl = float(config.default_ttl)
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        # The in-process store: the whole cache on the memory backend; with a
        # remote one, what serves during an outage and keeps two-level copies.
        self._breaker: FallbackBreaker | None
        self._remote: RemoteTier | None
        if isinstance(self.strategy, MemoryCacheStrategy):
            self._local = self.strategy
            self._breaker = self._remote = None
            self._memory_get: MemoryGet
            self._memory_set: MemorySet
            self._memory_get, self._memory_set = self._local.hot_paths(
                self.stats, self._default_ttl
            )
            self._skip_dispatch()
        else:
            self._local = MemoryCacheStrategy(config)
            self._breaker = FallbackBreaker(self.strategy, self._local, config, self.stats)
            self._remote = RemoteTier(self.strategy, self._local, self._breaker, config, self.stats)
        self._timed = bool(config.stats_enabled and self._remote is not None)
        # With a fleet link (coordination.backend: redis) and a remote backend,
        # get_or_set's single flight and the two-level copies span every process.
        self._flight: Flight | None = None
        if fleet is not None and self._remote is not None and self._breaker is not None:
            self._flight = fleet.flight
            if self._remote.two_level:
                self._remote.coherence = Coherence(
                    self._local,
                    self._breaker,
                    self._prefix,
                    fleet.bus,
                    fleet.invalidation_channel,
                )

    def prepare_settings(self, config: CacheConfig) -> Callable[[], None]:
        """For a reload: ``default_ttl`` and ``local_ttl`` (only those may change).

        A value already stored keeps the expiry it was written with. Turning
        two-level copies on or off (``local_ttl`` from or to 0 with
        ``two_level``) changes what the fleet invalidates and needs a restart.
        """
        remote = self._remote
        if remote is not None and config.two_level and (config.local_ttl > 0) != remote.two_level:
            raise RestartRequiredError(
                "from or to 0 turns two-level copies on or off", keys=("cache.local_ttl",)
            )

        def apply() -> None:
            self.config = self.strategy.config = self._local.config = config
            self._default_ttl = float(config.default_ttl)
            if remote is None:
                # The hot paths hold the default TTL: new ones, swapped in one step.
                self._memory_get, self._memory_set = self._local.hot_paths(
                    self.stats, self._default_ttl
                )
                self._skip_dispatch()
            else:
                remote.local_ttl = float(config.local_ttl)

        return apply

    def _skip_dispatch(self) -> None:
        """Make the memory store's coroutines this instance's own ``get`` and ``set``.

        The methods would only pass each call on, and on the memory backend a
        frame and an await more are a measurable share of an operation. A
        subclass that overrides either method keeps its override.
        """
        cls = type(self)
        if cls.get is CacheManager.get:
            self.get = self._memory_get  # type: ignore[method-assign]
        if cls.set is CacheManager.set:
            self.set = self._memory_set  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"CacheManager(backend={self.backend!r}, target={self.strategy.target!r})"

    @property
    def in_fallback(self) -> bool:
        """True while a failed remote backend is bypassed for memory."""
        return self._breaker is not None and not self._breaker.up

    @property
    def supports_tags(self) -> bool:
        """Whether ``tags=`` and :meth:`invalidate_tags` work on this backend."""
        return self.strategy.supports_tags

    @property
    def active_backend(self) -> str:
        return "memory" if self.in_fallback else self.backend

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Ping the remote backend: fail fast, or (with fallback) log and serve from memory."""
        if self._breaker is not None:
            await self._breaker.start()

    async def close(self) -> None:
        """Stop the probe and release the connection pool (``aclose()``)."""
        if self._breaker is not None:
            await self._breaker.close()
        await self.strategy.close()

    async def __aenter__(self) -> CacheManager:
        """``async with CacheManager(...) as cache``: start() on entry, close() on exit."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def health_check(self) -> HealthStatus:
        if self._breaker is None:
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
            await self.strategy.ping()
        except REMOTE_ERRORS as exc:
            detail = f"unreachable: {reason(exc)}"
            if self._breaker.enabled:
                detail += "; serving from memory until it answers"
            healthy, latency = False, None
        else:
            detail = "" if self._breaker.up else "answers again; leaving fallback"
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
            in_fallback=self.in_fallback,
            evictions=self._local.evictions,
            local_entries=len(self._local),
            max_size=self._local.max_size,
        )
        return stats

    # --- single-key operations ------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` when absent or expired."""
        remote = self._remote
        if remote is None:
            return await self._memory_get(key, default)
        started = perf_counter() if self._timed else 0.0
        data = await remote.get(self._prefix + key)
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

    async def set(
        self, key: str, value: Any, ttl: float | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` for ``ttl`` seconds (None: default_ttl, 0: no expiry).

        ``tags`` names groups the key joins: :meth:`invalidate_tags` deletes
        every key of a group at a cost proportional to the group, where
        :meth:`invalidate_pattern` scans the whole keyspace. False when Redis
        refused the write (out of memory, ...): the key then holds no older
        value (it is deleted, best effort).
        """
        remote = self._remote
        if remote is None:
            return await self._memory_set(key, value, ttl, tags=tags)
        seconds = self._default_ttl if ttl is None else ttl
        if not 0 <= seconds <= MAX_TTL:
            seconds = expiry_seconds(seconds, 0)  # inf: no expiry; raises on the others
        started = perf_counter() if self._timed else 0.0
        full, data = self._prefix + key, self._codec.encode(value)
        if tags:
            stored = await remote.set_many([(full, data)], seconds, self._tag_keys(tags))
        else:
            stored = await remote.set(full, data, seconds)
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
        if self._remote is None:
            found = self._local.lookup(full) is not None
        else:
            found = await self._remote.exists(full)
        self._timed_op(started)
        return found

    # --- multi-key operations ---------------------------------------------------------

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present (absent keys are left out)."""
        started = perf_counter() if self._timed else 0.0
        wanted = list(keys)
        prefix = self._prefix
        full = [prefix + k for k in wanted]
        if self._remote is None:
            lookup = self._local.lookup
            found = [lookup(k) for k in full]
        else:
            found = await self._remote.get_many(full)
        decode = self._codec.decode
        result = {k: decode(d) for k, d in zip(wanted, found, strict=True) if d is not None}
        stats = self.stats
        stats.hits += len(result)
        stats.misses += len(wanted) - len(result)
        self._timed_op(started)
        return result

    async def set_many(
        self, mapping: Mapping[str, Any], ttl: float | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store every item of ``mapping`` (pipelined on Redis), each joining ``tags``.

        False when Redis refused the write (out of memory, ...): none of the
        keys then holds an older value (they are deleted, best effort).
        """
        started = perf_counter() if self._timed else 0.0
        seconds = self._default_ttl if ttl is None else expiry_seconds(ttl, 0)
        encode, prefix = self._codec.encode, self._prefix
        tagged = self._tag_keys(tags) if tags else None
        items = [(prefix + k, encode(v)) for k, v in mapping.items()]
        if self._remote is None:
            if tagged:
                self._local.store_tagged(items, seconds, tagged)
            else:
                self._local.store_many(items, seconds)
            stored = True
        else:
            stored = await self._remote.set_many(items, seconds, tagged)
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
        if self._remote is None:
            removed = self._local.remove_matching(self._prefix, pattern)
        else:
            removed = await self._remote.delete_pattern(pattern)
        self._count_delete(removed, started)
        return removed

    delete_pattern = invalidate_pattern

    async def invalidate_tags(self, *tags: str) -> int:
        """Delete every key stored with any of ``tags``; how many were deleted.

        Two round trips per tag on Redis (SPOP the tag's members, UNLINK them),
        however many keys the namespace holds; correct on Redis Cluster, in
        two-level mode (every process drops its copies) and during an outage
        (the tag is invalidated on Redis when it returns).
        """
        started = perf_counter() if self._timed else 0.0
        keys = self._tag_keys(tags)
        if self._remote is None:
            removed, _ = self._local.remove_tagged(keys)
        else:
            removed = await self._remote.delete_tagged(keys)
        self._count_delete(removed, started)
        return removed

    async def clear(self) -> int:
        """Delete every key of this namespace (and nothing else)."""
        return await self.invalidate_pattern("*")

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], T | Awaitable[T]],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
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
                if self._flight is not None:
                    value = await self._load_once(key, factory, ttl, self._flight, tags)
                else:
                    value = await self._load(key, factory, ttl, tags)
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

    async def _load(
        self, key: str, factory: Callable[[], Any], ttl: float | None, tags: Iterable[str] = ()
    ) -> Any:
        produced = factory()
        value = await produced if inspect.isawaitable(produced) else produced
        if tags:
            await self.set(key, value, ttl, tags=tags)
        else:
            await self.set(key, value, ttl)  # a subclass's set() may not take tags
        return value

    async def _load_once(
        self,
        key: str,
        factory: Callable[[], Any],
        ttl: float | None,
        flight: Flight,
        tags: Iterable[str] = (),
    ) -> Any:
        """Load ``key`` in one process of the fleet; the others wait and read its value.

        The waiter registers for the owner's notice *before* checking, so a
        notice cannot slip between the check and the wait; the wait is
        bounded by the lock's TTL, after which a crashed owner's lock has
        expired and the next attempt takes it. Without the coordination
        Redis the load runs here (per-process single flight, as before).
        """
        full = self._prefix + key
        while True:
            landed = flight.expect(full)
            try:
                lock = await flight.try_lock(full)
            except REMOTE_ERRORS:
                landed.cancel()
                return await self._load(key, factory, ttl, tags)
            if lock is not None:
                landed.cancel()
                try:
                    value = await self.get(key, _MISSING)  # stored while we asked?
                    if value is _MISSING:
                        value = await self._load(key, factory, ttl, tags)
                    return value
                finally:
                    with contextlib.suppress(*REMOTE_ERRORS):  # it expires by itself
                        await lock.release()
            value = await self.get(key, _MISSING)
            if value is not _MISSING:
                landed.cancel()
                return value
            await flight.wait(full, landed)
            value = await self.get(key, _MISSING)
            if value is not _MISSING:
                return value

    # --- helpers ----------------------------------------------------------------------

    def _tag_keys(self, tags: Iterable[str]) -> list[str]:
        if not self.strategy.supports_tags:
            raise NotImplementedError(
                f"the {self.backend} cache backend does not support tags; "
                "use invalidate_pattern, or a backend that does (memory, redis, redis_cluster)"
            )
        return tag_keys(self._prefix, tags)

    async def _delete(self, full: list[str]) -> int:
        if self._remote is None:
            return self._local.remove(full)
        return await self._remote.delete(full)

    def _count_delete(self, removed: int, started: float) -> None:
        self.stats.deletes += removed
        self._timed_op(started)

    def _timed_op(self, started: float) -> None:
        if started:
            stats = self.stats
            stats.timed_operations += 1
            stats.latency_seconds += perf_counter() - started
