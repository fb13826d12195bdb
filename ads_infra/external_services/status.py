"""Status and health reports of the manager's services; none holds a secret.

A status is a plain dict for ``get_service_status()``; a health report is a
:class:`~ads_infra.health.HealthStatus`. A service with a ``health_path`` is
asked (one GET, no retry); any other is judged by its breaker. An offline
service (in-process, no HTTP) is always healthy.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from ads_infra.core.health import HealthStatus
from ads_infra.core.redact import mask_url
from ads_infra.external_services.balancer import Balancer
from ads_infra.external_services.breaker import CircuitState
from ads_infra.external_services.config import ServiceType
from ads_infra.external_services.registered import RegisteredService

__all__ = [
    "ask_health",
    "offline_health",
    "offline_status",
    "passive_health",
    "pool_health",
    "service_status",
]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def service_status(svc: RegisteredService) -> dict[str, Any]:
    """Breaker state, counts, last success and error (epoch seconds), latency in ms."""
    breaker = svc.breaker
    cfg = svc.config
    return {
        "name": svc.name,
        "service_type": cfg.service_type.value,
        "backend": "http",
        "base_url": svc.target,
        "state": breaker.state.label,
        "healthy": breaker.state is not CircuitState.OPEN,
        "consecutive_failures": breaker.failures,
        "opens_after": breaker.failure_threshold,
        "retry_in_s": round(breaker.retry_after(), 3),
        "requests": svc.requests,
        "errors": svc.errors,
        "last_success": svc.last_success,
        "last_error": svc.last_error,
        "last_error_at": svc.last_error_at,
        "latency_ms": _ms(svc.last_latency),
        "avg_latency_ms": _ms(svc.avg_latency),
        "rate_limit": cfg.rate_limit,
        "rate_period": cfg.rate_period,
        **({} if svc.pool is None else {"instances": svc.pool.describe()}),
    }


def offline_status(name: str, service_type: ServiceType, detail: str) -> dict[str, Any]:
    return {
        "name": name,
        "service_type": service_type.value,
        "backend": "offline",
        "state": "closed",
        "healthy": True,
        "detail": detail,
    }


def offline_health(name: str, detail: str) -> HealthStatus:
    return HealthStatus(
        component=f"services.{name}",
        backend="offline",
        healthy=True,
        latency_ms=0.0,
        detail=detail or "in-process, no network",
    )


async def ask_health(
    session: aiohttp.ClientSession, svc: RegisteredService, health_path: str
) -> HealthStatus:
    """GET ``health_path`` of ``svc`` once: healthy below 500; never raises."""
    started = time.perf_counter()
    try:
        async with session.get(
            svc.url_prefix + health_path, headers=svc.headers, timeout=svc.timeout
        ) as resp:
            await resp.read()
            healthy, detail = resp.status < 500, f"answered {resp.status}"
    except TimeoutError:
        healthy, detail = False, f"no answer within {svc.timeout.total} s"
    except aiohttp.ClientError as exc:
        healthy, detail = False, svc.scrub(mask_url(f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # a health check reports; it must not raise (e.g. a bad URL)
        healthy = False
        detail = "check failed: " + svc.scrub(mask_url(f"{type(exc).__name__}: {exc}"))
    return HealthStatus(
        component=f"services.{svc.name}",
        backend="http",
        healthy=healthy,
        latency_ms=(time.perf_counter() - started) * 1000,
        detail=detail,
        target=svc.target,
    )


def passive_health(svc: RegisteredService) -> HealthStatus:
    """The breaker's view of a service that has no health endpoint."""
    breaker = svc.breaker
    if breaker.state is CircuitState.OPEN:
        detail = f"circuit open; last error: {svc.last_error}"
    elif svc.last_success is None and svc.last_error is None:
        detail = "no calls yet"
    else:
        detail = f"circuit {breaker.state.label}"
        if svc.last_error:
            detail += f"; last error: {svc.last_error}"
    latency = svc.avg_latency
    return HealthStatus(
        component=f"services.{svc.name}",
        backend="http",
        healthy=breaker.state is not CircuitState.OPEN,
        latency_ms=None if latency is None else latency * 1000,
        detail=detail,
        target=svc.target,
    )


def pool_health(svc: RegisteredService, pool: Balancer) -> HealthStatus:
    """A discovered upstream: healthy while at least one instance would take a call."""
    total = len(pool.describe())
    available = pool.available()
    detail = f"{available}/{total} instances available ({pool.instances.service})"
    if pool.instances.stale_since is not None:
        detail += "; discovery is serving last known instances"
    if svc.last_error:
        detail += f"; last error: {svc.last_error}"
    latency = svc.avg_latency
    return HealthStatus(
        component=f"services.{svc.name}",
        backend="http",
        healthy=available > 0,
        latency_ms=None if latency is None else latency * 1000,
        detail=detail,
        target=svc.target,
    )
