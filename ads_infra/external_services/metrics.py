"""Prometheus metrics of the external services, in a registry the manager owns.

Each :class:`~ads_infra.external_services.ExternalServiceManager` has its own
``CollectorRegistry`` (not the process-wide default), so several managers, or
several tests, never collide on metric names. A host app exposes it with
``prometheus_client.generate_latest(manager.metrics_registry)`` or mounts
``make_asgi_app(registry=manager.metrics_registry)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

__all__ = ["ERROR_KINDS", "LATENCY_BUCKETS", "ServiceCounts", "ServiceMetrics"]

# The ``kind`` label of ads_external_errors: every way an attempt or a call can fail.
ERROR_KINDS = (
    "timeout",
    "connection",
    "server_error",
    "rate_limited",
    "client_error",
    "circuit_open",
)

# Latency buckets for HTTP APIs: 5 ms .. 30 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceCounts(Protocol):
    """What a service counts on every attempt, as plain numbers."""

    @property
    def name(self) -> str: ...

    @property
    def requests(self) -> int: ...

    @property
    def latency_counts(self) -> Sequence[int]:
        """Attempts per latency bucket (``LATENCY_BUCKETS``, then one for slower ones)."""

    @property
    def latency_sum(self) -> float: ...


class _PerAttempt:
    """Exports the per-attempt counts (requests, latency) when Prometheus scrapes.

    prometheus-client's Counter.inc and Histogram.observe take a lock each
    (three per attempt), a tenth of what the manager adds to a call on
    loopback; the services count in plain attributes on the event loop and
    this collector turns them into the same two families at scrape time.
    """

    def __init__(self, services: Callable[[], Iterable[ServiceCounts]]) -> None:
        self._services = services

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily("ads_external_requests", _REQUESTS_HELP, labels=["service"])
        yield HistogramMetricFamily(_LATENCY_NAME, _LATENCY_HELP, labels=["service"])

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("ads_external_requests", _REQUESTS_HELP, labels=["service"])
        latency = HistogramMetricFamily(_LATENCY_NAME, _LATENCY_HELP, labels=["service"])
        for svc in list(self._services()):
            requests.add_metric([svc.name], svc.requests)
            cumulative, buckets = 0, []
            for bound, count in zip(_BOUNDS, svc.latency_counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([svc.name], buckets, svc.latency_sum)
        yield requests
        yield latency


_REQUESTS_HELP = "HTTP requests sent to external services (every attempt)."
_LATENCY_NAME = "ads_external_request_duration_seconds"
_LATENCY_HELP = "Latency of each HTTP attempt, response body included."
_BOUNDS = (*(repr(float(b)) for b in LATENCY_BUCKETS), "+Inf")


class ServiceMetrics:
    """The metric families of the services in one registry.

    ``services`` lists the registered services, whose own counts become the
    requests and latency families; errors and breaker states change rarely
    and are prometheus-client metrics with label children bound per service.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        services: Callable[[], Iterable[ServiceCounts]] = tuple,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(_PerAttempt(services))
        self.errors = Counter(
            "ads_external_errors",
            "Failed attempts or rejected calls, by kind "
            "(timeout, connection, server_error, rate_limited, client_error, circuit_open).",
            ["service", "kind"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "ads_external_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["service"],
            registry=self.registry,
        )
