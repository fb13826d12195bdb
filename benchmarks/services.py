"""``ads-infra bench services``: calls/s through ExternalServiceManager vs raw aiohttp.

Both sides call the same local aiohttp server, in this process and event
loop, with the same concurrency and the same connector limits; the raw side
shares one ClientSession, as a well-written client would. Rounds alternate
between the two sides in ABBA order and the median of each is reported, so a noisy
neighbour on the machine slows both alike. The manager's service has a rate
limit (set far above what the loop can reach) and a circuit breaker on the
path, as in production.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from ads_infra.core.settings import DiscoveryConfig, HttpConfig
from ads_infra.discovery import Instance, ServiceDiscovery
from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager
from benchmarks.report import Measurement, Sample, measure_ops, row

AREA = "services"
SETUP = "a local aiohttp server in the same loop, 16 callers, HttpConfig defaults"
TARGET = 0.9
CONCURRENCY = 16
PAYLOAD = b'{"id":"chatcmpl-1","choices":[{"message":{"content":"Ad copy"}}]}'


async def _ping(_request: web.Request) -> web.Response:
    return web.Response(body=PAYLOAD, content_type="application/json")


async def _server() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/ping", _ping)
    app.router.add_post("/ping", _ping)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


class _Fixed(ServiceDiscovery):
    """Discovery whose instances the bench sets: the balancer's cost, no backend's."""

    backend = "fixed"

    async def start(self) -> None: ...

    async def close(self) -> None: ...


async def _alternate(
    sides: dict[str, Callable[[], Awaitable[Any]]], *, rounds: int, operations: int
) -> dict[str, Sample]:
    """Median ops/s of each side over many short rounds in ABBA order.

    Short rounds, with the order flipped every round, keep both sides of each
    pair within a second of each other, so a burst from a neighbouring process
    lands on both alike and drift over the run cancels out.
    """
    results = {name: Sample() for name in sides}
    for op in sides.values():  # warm connections and code paths
        await measure_ops(op, operations=operations, concurrency=CONCURRENCY)
    names = list(sides)
    for i in range(rounds):
        for name in names if i % 2 == 0 else reversed(names):
            sample = results[name]
            sample.rates.append(
                await measure_ops(
                    sides[name],
                    operations=operations,
                    concurrency=CONCURRENCY,
                    latencies=sample.latencies,
                )
            )
    return results


async def run(*, quick: bool) -> list[Measurement]:
    rounds, operations = (12, 300) if quick else (40, 500)
    http = HttpConfig()  # the shipped limits, given to the raw session too
    runner, url = await _server()
    raw = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=http.connector_limit, limit_per_host=http.connector_limit_per_host
        ),
        timeout=aiohttp.ClientTimeout(total=http.total_timeout, connect=http.connect_timeout),
    )
    manager = ExternalServiceManager(http)
    manager.register_service(
        "bench",
        ExternalServiceConfig(base_url=url, api_key="bench-key", rate_limit=1_000_000),
    )
    # The same upstream behind discovery: two instances (two servers), round robin,
    # a breaker each; the raw side spreads its calls over the same two by hand.
    runner2, url2 = await _server()
    fixed = _Fixed(DiscoveryConfig(resolve=["pool=bench"]))
    fixed.instances("bench").replace([Instance(url), Instance(url2)])
    pooled = ExternalServiceManager(http, discovery=fixed)
    pooled.register_service(
        "pool", ExternalServiceConfig(base_url=url, api_key="bench-key", rate_limit=1_000_000)
    )
    pings = [f"{url}/ping", f"{url2}/ping"]
    turn = [0]
    headers = {"Authorization": "Bearer bench-key"}
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "Create an ad"}]}
    ping = f"{url}/ping"

    async def raw_get() -> bytes:
        async with raw.get(ping, headers=headers) as response:
            return await response.read()

    async def managed_get() -> Any:
        return await manager.request("bench", "GET", "/ping")

    async def raw_post() -> bytes:
        async with raw.post(ping, json=body, headers=headers) as response:
            return await response.read()

    async def managed_post() -> Any:
        return (await manager.request("bench", "POST", "/ping", json=body)).json()

    async def raw_spread() -> bytes:
        turn[0] += 1
        async with raw.get(pings[turn[0] % 2], headers=headers) as response:
            return await response.read()

    async def pooled_get() -> Any:
        return await pooled.request("pool", "GET", "/ping")

    try:
        get = await _alternate(
            {"raw": raw_get, "ours": managed_get}, rounds=rounds, operations=operations
        )
        post = await _alternate(
            {"raw": raw_post, "ours": managed_post}, rounds=rounds, operations=operations
        )
        spread = await _alternate(
            {"raw": raw_spread, "ours": pooled_get}, rounds=rounds, operations=operations
        )
    finally:
        await pooled.close()
        await runner2.cleanup()
        await manager.close()
        await raw.close()
        await runner.cleanup()
    note = f"median of {rounds} ABBA rounds of {operations}"
    return [
        row(
            AREA, "GET through the manager", get["ours"], "raw aiohttp", get["raw"],
            unit="calls/s", target=TARGET, concurrency=CONCURRENCY, note=note,
        ),
        row(
            AREA, "POST JSON through the manager (decoded)", post["ours"], "raw aiohttp",
            post["raw"], unit="calls/s", target=TARGET, concurrency=CONCURRENCY, note=note,
        ),
        row(
            AREA, "GET, 2 discovered instances (round robin)", spread["ours"],
            "raw aiohttp, alternating by hand", spread["raw"], unit="calls/s", target=TARGET,
            concurrency=CONCURRENCY, note=note,
        ),
    ]  # fmt: skip
