"""Prometheus metrics of the external services, in a registry the manager owns.

Each :class:`~ads_infra.external_services.ExternalServiceManager` has its own
``CollectorRegistry`` (not the process-wide default), so several managers, or
several tests, never collide on metric names. A host app exposes it with
``prometheus_client.generate_latest(manager.metrics_registry)`` or mounts
``make_asgi_app(registry=manager.metrics_registry)``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ERROR_KINDS", "ServiceMetrics"]

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


class ServiceMetrics:
    """The four metric families; label children are bound once per service."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "ads_external_requests",
            "HTTP requests sent to external services (every attempt).",
            ["service"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ads_external_errors",
            "Failed attempts or rejected calls, by kind "
            "(timeout, connection, server_error, rate_limited, client_error, circuit_open).",
            ["service", "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ads_external_request_duration_seconds",
            "Latency of each HTTP attempt, response body included.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "ads_external_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["service"],
            registry=self.registry,
        )
