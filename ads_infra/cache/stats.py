"""CacheStats: the manager's counters, plain attributes a Prometheus collector reads."""

from __future__ import annotations

from typing import Any

__all__ = ["CacheStats"]


class CacheStats:
    """Counters since the manager was built: plain ints, ready for Prometheus.

    ``latency_seconds`` and ``timed_operations`` are the sum and count of a
    Prometheus summary over remote operations (when ``stats_enabled``).
    Memory operations are counted but not timed: reading the clock twice
    would cost more than the lookup itself.
    """

    __slots__ = (
        "deletes",
        "errors",
        "fallbacks",
        "hits",
        "latency_seconds",
        "misses",
        "sets",
        "timed_operations",
    )

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.sets = 0
        self.deletes = 0
        self.errors = 0
        self.fallbacks = 0
        self.timed_operations = 0
        self.latency_seconds = 0.0

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    @property
    def mean_latency_ms(self) -> float:
        timed = self.timed_operations
        return self.latency_seconds * 1000 / timed if timed else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "sets": self.sets,
            "deletes": self.deletes,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "timed_operations": self.timed_operations,
            "mean_latency_ms": self.mean_latency_ms,
        }
