"""A registered service reconfigured while callers queue for its rate limit (real upstream)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from ads_infra.errors import UpstreamError
from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager
from ads_infra.external_services.breaker import CircuitState
from tests.integration.services.conftest import Reply, Upstream


async def test_callers_queued_at_the_old_rate_move_to_the_new_one_at_once(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    config = ExternalServiceConfig(base_url=upstream.url, rate_limit=50, rate_period=1.0)
    manager.register_service("paced", config)
    stop = asyncio.Event()

    async def caller() -> None:
        while not stop.is_set():
            await manager.request("paced", "GET", "/fault/paced")

    callers = [asyncio.create_task(caller()) for _ in range(16)]
    await asyncio.sleep(1.0)  # 16 callers queued on the limiter at 50 per second
    before = upstream.count("paced")
    manager.reconfigure_service("paced", dataclasses.replace(config, rate_limit=5))
    changed = time.monotonic()
    await asyncio.sleep(1.1)
    stop.set()
    await asyncio.gather(*callers)
    # From the change on, the upstream sees the new rate: the 16 queued callers
    # do not drain at the old one first (one more may fall on the window's edge).
    arrived = [t for t in upstream.times("paced") if changed <= t < changed + 1.0]
    assert before > 30 and 1 <= len(arrived) <= 6, (before, len(arrived))


async def test_a_reconfigured_breaker_keeps_its_state(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    config = ExternalServiceConfig(
        base_url=upstream.url, rate_limit=None, max_retries=0, failure_threshold=5
    )
    manager.register_service("flaky", config)
    upstream.script("flaky", Reply(status=503), Reply(status=503), Reply(status=503))
    breaker = manager.breaker("flaky")
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await manager.request("flaky", "GET", "/fault/flaky")
    assert breaker.failures == 2 and breaker.state is CircuitState.CLOSED
    manager.reconfigure_service("flaky", dataclasses.replace(config, failure_threshold=3))
    assert manager.breaker("flaky") is breaker and breaker.failures == 2
    with pytest.raises(UpstreamError):
        await manager.request("flaky", "GET", "/fault/flaky")
    assert breaker.state is CircuitState.OPEN  # the third failure, under the new threshold
    assert manager.get_service_status("flaky")["requests"] == 3
