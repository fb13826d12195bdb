"""The soak under faults: Redis stopped and restarted, PostgreSQL backends terminated.

Short (9 s of load) so it runs in ``make test``; the longer documented run is
the same test with more seconds (README, "Soak"):

    ADS_SOAK_SECONDS=120 .venv/bin/pytest tests/integration/soak -s
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ads_infra.entrypoints.soak import run_soak
from ads_infra.testing import build_test_container
from tests.integration.soak.faults import terminate_backends
from tests.redis_server import RedisServer

SECONDS = float(os.environ.get("ADS_SOAK_SECONDS", "9"))


async def test_soak_loses_no_acknowledged_write_under_faults(
    tmp_path: Path, postgres_url: str, private_redis: RedisServer
) -> None:
    container = build_test_container(
        tmp_path / "soak",
        {
            "database": {"url": postgres_url, "retry_delay": 0.05, "retry_max_delay": 0.5},
            "cache": {
                "cache_type": "redis",
                "redis_url": private_redis.url,
                "socket_timeout": 0.5,
                "fallback_probe_interval": 0.3,
            },
        },
    )
    terminated: list[int] = []
    cache_back_on_redis: list[bool] = []
    cache = container.cache.manager()

    async def back_on_redis(patience: float = 10.0) -> bool:
        for _ in range(int(patience / 0.1)):
            await cache.get("probe")  # traffic lets the breaker probe Redis
            if not cache.in_fallback and cache.active_backend == "redis":
                return True
            await asyncio.sleep(0.1)
        return False

    async def faults() -> None:
        """Fault cycles until shortly before the end, two at least: kill backends, stop
        Redis, restart it. (On a loaded machine one cycle can outlast the soak's first six
        seconds; the second then runs anyway, so the checks below always see two.)"""
        deadline = asyncio.get_running_loop().time() + SECONDS - 3.0
        await asyncio.sleep(1.0)
        while len(cache_back_on_redis) < 2 or asyncio.get_running_loop().time() < deadline:
            terminated.append(await terminate_backends(postgres_url, application_name="ads-infra"))
            await asyncio.sleep(0.7)
            await asyncio.to_thread(private_redis.stop)
            await asyncio.sleep(1.0)
            terminated.append(await terminate_backends(postgres_url, application_name="ads-infra"))
            await asyncio.to_thread(private_redis.start)
            cache_back_on_redis.append(await back_on_redis())
            await asyncio.sleep(0.5)

    report = await run_soak(container, seconds=SECONDS, concurrency=8, fault_hook=faults)
    summary: dict[str, Any] = report.to_dict()
    print("\n".join(report.summary_lines()))
    print(
        f"faults: Redis stopped and restarted {len(cache_back_on_redis)} times, "
        f"{sum(terminated)} PostgreSQL backends terminated in {len(terminated)} rounds"
    )

    assert len(cache_back_on_redis) >= 2 and sum(terminated) >= 3, terminated  # faults hit
    assert all(cache_back_on_redis)  # the cache returned to Redis after every restart
    assert report.cache_fallbacks > 0  # and Redis really went away under load
    assert summary["writes_lost"] == 0, summary
    assert summary["unhandled_exceptions"] == 0, summary["unhandled_samples"]
    assert all(n > 0 for n in summary["writes_acknowledged"].values()), summary
    assert summary["final_cache_backend"] == "redis"
    assert summary["final_database_healthy"] is True
