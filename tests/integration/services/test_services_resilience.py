"""Retries, Retry-After, timeouts, the circuit breaker and the rate limit, on a real server.

Timing facts are read from the server's own arrival timestamps, and only as
lower bounds ("waited at least what was asked"), never as speed limits. The
breaker's recovery runs on an injected clock, moved by the test, not slept for.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import pytest

from ads_infra.config import HttpConfig
from ads_infra.errors import (
    CircuitOpenError,
    ExternalServiceError,
    RateLimitedError,
    ServiceTimeoutError,
    UpstreamError,
)
from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager
from tests.integration.services.conftest import ManualClock, Reply, Upstream
from tests.services import free_port


def register(
    manager: ExternalServiceManager, upstream: Upstream, name: str = "svc", **options: object
) -> None:
    settings: dict[str, object] = {"rate_limit": None, "retry_backoff": 0.01, **options}
    manager.register_service(
        name,
        ExternalServiceConfig(base_url=upstream.url, **settings),  # type: ignore[arg-type]
    )


def sample(manager: ExternalServiceManager, metric: str, **labels: str) -> float | None:
    return manager.metrics_registry.get_sample_value(metric, labels)


# --- retries -------------------------------------------------------------------------


async def test_500s_then_success_is_retried(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    register(manager, upstream, max_retries=3)
    upstream.script("flaky", Reply(500), Reply(502), Reply(200, {"value": 42}))

    response = await manager.request("svc", "GET", "/fault/flaky")

    assert response.status == 200 and response.json() == {"value": 42}
    assert upstream.count("flaky") == 3
    status = manager.get_service_status("svc")
    assert status["state"] == "closed" and status["consecutive_failures"] == 0
    assert status["errors"] == 2 and status["last_success"] is not None
    assert "502" in status["last_error"]
    assert sample(manager, "ads_external_requests_total", service="svc") == 3
    assert sample(manager, "ads_external_errors_total", service="svc", kind="server_error") == 2
    assert sample(manager, "ads_external_request_duration_seconds_count", service="svc") == 3


async def test_retries_are_bounded(upstream: Upstream, manager: ExternalServiceManager) -> None:
    register(manager, upstream, max_retries=2)
    upstream.script("down", *[Reply(503, {"error": {"message": "overloaded"}})] * 5)
    with pytest.raises(UpstreamError, match=r"failed after 3 attempt\(s\).*503.*overloaded") as err:
        await manager.request("svc", "GET", "/fault/down")
    assert err.value.status == 503 and err.value.service == "svc"
    assert upstream.count("down") == 3


async def test_post_is_retried_only_with_an_idempotency_key(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    register(manager, upstream, max_retries=3)
    upstream.script("once", Reply(500), Reply(200))
    with pytest.raises(UpstreamError):
        await manager.request("svc", "POST", "/fault/once", json={"n": 1})
    assert upstream.count("once") == 1

    upstream.script("keyed", Reply(500), Reply(200))
    await manager.request("svc", "POST", "/fault/keyed", json={"n": 1}, idempotency_key="k-1")
    hits = upstream.hits["keyed"]
    assert len(hits) == 2
    assert [hit.headers["Idempotency-Key"] for hit in hits] == ["k-1", "k-1"]
    assert hits[0].body == hits[1].body == b'{"n":1}'


async def test_429_waits_at_least_retry_after(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    # Without Retry-After the backoff would retry after ~10 ms.
    register(manager, upstream, max_retries=2, retry_backoff=0.01)
    upstream.script("limited", Reply(429, {"error": "slow down"}, {"Retry-After": "1"}), Reply())

    response = await manager.request("svc", "GET", "/fault/limited")

    assert response.status == 200
    first, second = upstream.times("limited")
    assert second - first >= 1.0 - 0.005  # the server's clock: it waited what was asked


async def test_retry_after_beyond_the_cap_fails_at_once(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    register(manager, upstream, max_retries=3, retry_after_cap=5)
    upstream.script("later", Reply(429, {"error": "quota"}, {"Retry-After": "120"}))
    with pytest.raises(RateLimitedError, match=r"retry after 120 s.*retry_after_cap") as err:
        await manager.request("svc", "GET", "/fault/later")
    assert err.value.status == 429
    assert upstream.count("later") == 1


async def test_429_without_retry_after_exhausts_into_rate_limited(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    register(manager, upstream, max_retries=1)
    upstream.script("busy", Reply(429), Reply(429))
    with pytest.raises(RateLimitedError, match="lower the service's rate_limit"):
        await manager.request("svc", "GET", "/fault/busy")
    assert upstream.count("busy") == 2


async def test_timeout(upstream: Upstream, manager: ExternalServiceManager) -> None:
    register(manager, upstream, max_retries=1, timeout=0.2)
    upstream.script("slow", Reply(delay=2.0), Reply(delay=2.0))
    with pytest.raises(ServiceTimeoutError, match=r"no answer within 0\.2 s") as err:
        await manager.request("svc", "GET", "/fault/slow")
    assert isinstance(err.value, TimeoutError)
    assert upstream.count("slow") == 2  # retried once
    assert sample(manager, "ads_external_errors_total", service="svc", kind="timeout") == 2


async def test_connection_refused(manager: ExternalServiceManager) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    manager.register_service(
        "gone", ExternalServiceConfig(base_url=url, retry_backoff=0.01, max_retries=1)
    )
    with pytest.raises(ExternalServiceError, match=r"failed after 2 attempt\(s\).*reachable"):
        await manager.request("gone", "GET", "/")
    assert manager.get_service_status("gone")["errors"] == 2


async def test_waiting_for_a_pooled_connection_is_not_a_connect_timeout(
    upstream: Upstream,
) -> None:
    # One connection per host, a 0.2 s connect timeout, and an upstream taking
    # 0.5 s: the second and third callers wait up to 1 s for the connection,
    # well within the 10 s total, and must not fail as "no answer".
    manager = ExternalServiceManager(HttpConfig(connect_timeout=0.2, connector_limit_per_host=1))
    try:
        register(manager, upstream, max_retries=0, timeout=10, failure_threshold=1)
        upstream.script("pool", *[Reply(delay=0.5)] * 3)
        results = await asyncio.gather(
            *(manager.request("svc", "GET", "/fault/pool") for _ in range(3)),
            return_exceptions=True,
        )
    finally:
        await manager.close()
    assert [getattr(r, "status", r) for r in results] == [200, 200, 200]
    status = manager.get_service_status("svc")
    assert status["state"] == "closed" and status["errors"] == 0
    assert upstream.count("pool") == 3


async def test_path_without_a_leading_slash_is_refused_before_sending(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    register(manager, upstream, max_retries=3, failure_threshold=1)
    with pytest.raises(ValueError, match=r"'fault/x' must start with '/'.*use '/fault/x'"):
        await manager.request("svc", "GET", "fault/x")
    status = manager.get_service_status("svc")
    assert status["requests"] == 0 and status["state"] == "closed"
    assert upstream.count("x") == 0


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf])
async def test_a_timeout_that_would_disable_the_timeout_is_refused(
    upstream: Upstream, manager: ExternalServiceManager, seconds: float
) -> None:
    register(manager, upstream)
    with pytest.raises(ValueError, match=r"svc: timeout must be a finite number of seconds > 0"):
        await manager.request("svc", "GET", "/fault/t", timeout=seconds)
    assert upstream.count("t") == 0


# --- circuit breaker ----------------------------------------------------------------


async def test_breaker_opens_rejects_without_sending_and_probes_once(
    upstream: Upstream, clocked_manager: ExternalServiceManager, clock: ManualClock
) -> None:
    manager = clocked_manager
    register(manager, upstream, max_retries=0, failure_threshold=3, recovery_timeout=30)
    upstream.script("b", Reply(500), Reply(500), Reply(500))
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await manager.request("svc", "GET", "/fault/b")
    assert manager.get_service_status("svc")["state"] == "open"
    assert sample(manager, "ads_external_circuit_state", service="svc") == 2

    # Open: nothing reaches the server.
    for _ in range(5):
        with pytest.raises(CircuitOpenError, match="circuit is open after 3 consecutive"):
            await manager.request("svc", "GET", "/fault/b")
    assert upstream.count("b") == 3
    (report,) = await manager.health_check()
    assert report.component == "services.svc" and not report.healthy
    clock.advance(29.9)
    with pytest.raises(CircuitOpenError, match=r"lets one probe through in 0\.1 s"):
        await manager.request("svc", "GET", "/fault/b")
    assert manager.get_service_status("svc")["retry_in_s"] == pytest.approx(0.1)

    # Half-open: of ten concurrent callers exactly one is sent, as the probe.
    clock.advance(0.1)
    upstream.script("b", Reply(200, {"probe": True}, delay=0.1))
    results = await asyncio.gather(
        *(manager.request("svc", "GET", "/fault/b") for _ in range(10)), return_exceptions=True
    )
    assert upstream.count("b") == 4
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 9
    assert [r.json() for r in results if not isinstance(r, BaseException)] == [{"probe": True}]
    assert manager.get_service_status("svc")["state"] == "closed"
    assert sample(manager, "ads_external_circuit_state", service="svc") == 0


async def test_failed_probe_opens_again(
    upstream: Upstream, clocked_manager: ExternalServiceManager, clock: ManualClock
) -> None:
    manager = clocked_manager
    register(manager, upstream, max_retries=0, failure_threshold=2, recovery_timeout=30)
    upstream.script("p", Reply(500), Reply(500))
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await manager.request("svc", "GET", "/fault/p")
    clock.advance(30)
    upstream.script("p", Reply(500, delay=0.05))
    results = await asyncio.gather(
        *(manager.request("svc", "GET", "/fault/p") for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, UpstreamError) for r in results) == 1
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 4
    assert manager.get_service_status("svc")["state"] == "open"
    clock.advance(29.9)  # a full recovery_timeout again, from the failed probe
    with pytest.raises(CircuitOpenError):
        await manager.request("svc", "GET", "/fault/p")
    assert upstream.count("p") == 3


async def test_retries_stop_when_the_circuit_opens(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    register(manager, upstream, max_retries=5, failure_threshold=2, recovery_timeout=30)
    upstream.script("r", *[Reply(500)] * 6)
    with pytest.raises(CircuitOpenError, match="last error: answered 500"):
        await manager.request("svc", "GET", "/fault/r")
    assert upstream.count("r") == 2


async def test_client_errors_do_not_open_the_circuit(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    register(manager, upstream, max_retries=3, failure_threshold=2)
    upstream.script("nf", *[Reply(404, {"error": {"message": "no such thing"}})] * 4)
    for _ in range(4):
        with pytest.raises(UpstreamError, match="404: no such thing; check the base URL"):
            await manager.request("svc", "GET", "/fault/nf")
    assert upstream.count("nf") == 4  # and none retried
    assert manager.get_service_status("svc")["state"] == "closed"


# --- rate limit ------------------------------------------------------------------------


def per_second(times: list[float]) -> Counter[int]:
    """Requests the server saw in each whole second of its monotonic clock."""
    return Counter(int(t) for t in times)


async def test_200_concurrent_callers_never_exceed_the_rate_limit(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    register(manager, upstream, "limited", rate_limit=50, rate_period=1.0)
    register(manager, upstream, "unlimited", rate_limit=None)

    await asyncio.gather(*(manager.request("limited", "GET", "/fault/rl") for _ in range(200)))
    await asyncio.gather(*(manager.request("unlimited", "GET", "/fault/free") for _ in range(200)))

    assert upstream.count("rl") == 200
    # The pacer sends one call every 20 ms; the server sees each a little later, by a
    # delay that varies (the loop's turns, a loaded machine): counted in the server's
    # whole seconds, one call delayed across a boundary made a second of 51. What the
    # server can rely on is the spacing: any 51 calls in a row span the period (less
    # what an arrival may be delayed relative to another), and 200 span 199 spacings.
    jitter = 0.1
    limited = sorted(upstream.times("rl"))
    spans = [later - first for first, later in zip(limited, limited[50:], strict=False)]
    assert min(spans) >= 1.0 - jitter, per_second(limited)
    assert limited[-1] - limited[0] >= 199 * 0.02 - jitter
    # Control: the same load without a limit fails both, so the checks can fail.
    free = sorted(upstream.times("free"))
    assert min(later - first for first, later in zip(free, free[50:], strict=False)) < 0.5
    assert free[-1] - free[0] < 199 * 0.02 - jitter
