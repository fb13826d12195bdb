"""Prometheus metrics of the whole layer, in one registry a host app exposes at ``/metrics``.

The database pool and the cache keep plain counters (no prometheus-client on
their hot paths); :class:`InfrastructureCollector` reads them at scrape
time. The external services keep their own registry
(``ServicesSource.metrics_registry``), which :func:`build_registry`
folds in, so one scrape returns pool, cache and service metrics together.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


# What the collector reads, as protocols: the kernel names no adapter, so the
# database, cache and services packages depend on it and never the reverse.
class PoolView(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def checked_out(self) -> int: ...
    @property
    def checked_in(self) -> int: ...
    @property
    def overflow(self) -> int: ...


class DatabaseSource(Protocol):
    @property
    def backend(self) -> str: ...
    @property
    def transactions(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def pool(self) -> PoolView: ...


class CacheCounters(Protocol):
    @property
    def hits(self) -> int: ...
    @property
    def misses(self) -> int: ...
    @property
    def sets(self) -> int: ...
    @property
    def deletes(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def fallbacks(self) -> int: ...


class CacheSource(Protocol):
    @property
    def stats(self) -> CacheCounters: ...
    @property
    def backend(self) -> str: ...
    @property
    def in_fallback(self) -> bool: ...


class ServicesSource(Protocol):
    """Anything keeping its own registry: the external services, the config reloader."""

    @property
    def metrics_registry(self) -> CollectorRegistry: ...


__all__ = ["InfrastructureCollector", "build_registry"]


class InfrastructureCollector(Collector):
    """Pool and cache figures, read from the managers when Prometheus scrapes."""

    def __init__(
        self, *, database: DatabaseSource | None = None, cache: CacheSource | None = None
    ) -> None:
        self.database = database
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        if self.database is not None:
            yield from self._database(self.database)
        if self.cache is not None:
            yield from self._cache(self.cache)

    @staticmethod
    def _database(db: DatabaseSource) -> Iterator[Metric]:
        pool = db.pool
        labels = ["backend"]
        for name, help_text, value in (
            ("ads_db_pool_size", "Configured pool size", pool.size),
            ("ads_db_pool_checked_out", "Connections in use", pool.checked_out),
            ("ads_db_pool_checked_in", "Idle pooled connections", pool.checked_in),
            ("ads_db_pool_overflow", "Connections beyond pool_size", pool.overflow),
        ):
            gauge = GaugeMetricFamily(name, help_text, labels=labels)
            gauge.add_metric([db.backend], value)
            yield gauge
        for name, help_text, count in (
            ("ads_db_transactions", "Committed transactions", db.transactions),
            ("ads_db_retries", "Units of work run again after a transient error", db.retries),
            ("ads_db_failures", "Database operations that failed for good", db.failures),
        ):
            counter = CounterMetricFamily(name, help_text, labels=labels)
            counter.add_metric([db.backend], count)
            yield counter

    @staticmethod
    def _cache(cache: CacheSource) -> Iterator[Metric]:
        stats = cache.stats
        labels = ["backend"]
        for name, help_text, count in (
            ("ads_cache_hits", "Cache reads that found a value", stats.hits),
            ("ads_cache_misses", "Cache reads that found nothing", stats.misses),
            ("ads_cache_sets", "Values written", stats.sets),
            ("ads_cache_deletes", "Keys deleted", stats.deletes),
            ("ads_cache_errors", "Backend errors", stats.errors),
            (
                "ads_cache_fallbacks",
                "Operations served from memory while Redis was away",
                stats.fallbacks,
            ),
        ):
            counter = CounterMetricFamily(name, help_text, labels=labels)
            counter.add_metric([cache.backend], count)
            yield counter
        gauge = GaugeMetricFamily(
            "ads_cache_fallback_active", "1 while the remote cache is bypassed", labels=labels
        )
        gauge.add_metric([cache.backend], 1.0 if cache.in_fallback else 0.0)
        yield gauge


class _RegistryCollector(Collector):
    """Re-exports every metric of another registry (the services' own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def build_registry(
    *,
    database: DatabaseSource | None = None,
    cache: CacheSource | None = None,
    services: ServicesSource | None = None,
    reloads: ServicesSource | None = None,
) -> CollectorRegistry:
    """One registry with pool, cache, service and reload metrics (the container's ``metrics``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InfrastructureCollector(database=database, cache=cache))
    for source in (services, reloads):
        if source is not None:
            registry.register(_RegistryCollector(source.metrics_registry))
    return registry
