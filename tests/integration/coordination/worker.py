"""One worker process of the fleet tests: ``python -m tests.integration.coordination.worker``.

Argument: one JSON object (mode, backend, redis_url, prefix, ...). Each
mode builds the real managers (with a Coordinator when backend is redis),
prints ``ready``, reads a wall-clock start time from stdin (the same for
every worker: they start together however long each took to import),
runs for its bounded time and prints one JSON line of results on stdout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from typing import Any

from redis.asyncio import Redis

from ads_infra.cache import CacheManager
from ads_infra.coordination import Coordinator
from ads_infra.core.settings import AnalyticsConfig, CacheConfig, CoordinationConfig
from ads_infra.external_services import AnalyticsService, ExternalServiceManager
from ads_infra.external_services.breaker import CircuitState
from ads_infra.external_services.config import ExternalServiceConfig


def coordinator(args: dict[str, Any]) -> Coordinator | None:
    if args["backend"] != "redis":
        return None
    return Coordinator(
        CoordinationConfig(
            backend="redis",  # type: ignore[arg-type]
            redis_url=args["redis_url"],
            key_prefix=args["prefix"],
            expected_processes=args.get("expected_processes", 1),
            lock_ttl=args.get("lock_ttl", 10.0),
            outbox_claim_after=args.get("claim_after", 60.0),
        )
    )


async def until(args: dict[str, Any]) -> None:
    """Say ready, read the common start time from stdin (sets ``args["start_at"]``), wait."""
    print("ready", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    args["start_at"] = float(line)
    await asyncio.sleep(max(0.0, args["start_at"] - time.time()))


async def hammer(manager: ExternalServiceManager, end: float, pause: float) -> dict[str, int]:
    counts = {"ok": 0, "failed": 0}

    async def one() -> None:
        while time.time() < end:
            try:
                await manager.request("ai", "GET", "/hit")
                counts["ok"] += 1
            except Exception:
                counts["failed"] += 1
            if pause:
                await asyncio.sleep(pause)

    await asyncio.gather(*(one() for _ in range(8)))
    return counts


async def services(args: dict[str, Any]) -> dict[str, Any]:
    fleet = coordinator(args)
    if fleet is not None:
        await fleet.start()
    manager = ExternalServiceManager(fleet=fleet)
    manager.register_service(
        "ai",
        ExternalServiceConfig(
            base_url=args["url"],
            rate_limit=args.get("rate_limit"),
            max_retries=0,
            failure_threshold=3,
            recovery_timeout=args.get("recovery_timeout", 1.0),
        ),
    )
    changes: list[tuple[float, str]] = []

    def record(name: str, state: CircuitState, previous: CircuitState) -> None:
        changes.append((time.time(), state.label))

    manager.on_breaker_change(record)
    await manager.start()
    await until(args)
    counts = await hammer(manager, args["start_at"] + args["seconds"], args.get("pause", 0.0))
    await manager.close()
    if fleet is not None:
        await fleet.close()
    return {**counts, "changes": changes}


async def flight(args: dict[str, Any]) -> dict[str, Any]:
    fleet = coordinator(args)
    if fleet is not None:
        await fleet.start()
    cache = CacheManager(
        CacheConfig(cache_type="redis", redis_url=args["redis_url"], namespace=args["prefix"]),  # type: ignore[arg-type]
        fleet=fleet,
    )
    await cache.start()
    counter = Redis.from_url(args["redis_url"])

    async def load() -> str:
        await counter.incr(args["prefix"] + ":loads")
        await asyncio.sleep(0.3)
        return "loaded"

    await until(args)
    values = await asyncio.gather(*(cache.get_or_set("cold", load) for _ in range(args["calls"])))
    await counter.aclose()
    await cache.close()
    if fleet is not None:
        await fleet.close()
    return {"values": sorted(set(values))}


async def coherence(args: dict[str, Any]) -> dict[str, Any]:
    fleet = coordinator(args)
    if fleet is not None:
        await fleet.start()
    cache = CacheManager(
        CacheConfig(
            cache_type="redis",  # type: ignore[arg-type]
            redis_url=args["redis_url"],
            namespace=args["prefix"],
            two_level=True,
            local_ttl=60,
        ),
        fleet=fleet,
    )
    await cache.start()
    await asyncio.sleep(0.5)  # the bus subscribes
    await until(args)
    log: list[tuple[float, int]] = []
    if args["role"] == "writer":
        for i in range(1, args["writes"] + 1):
            await cache.set("k", i)
            log.append((time.time(), i))  # the write is done (and announced) by now
            await asyncio.sleep(args["spacing"])
    else:
        end = args["start_at"] + args["writes"] * args["spacing"] + 1.0
        while time.time() < end:
            started = time.time()
            value = await cache.get("k", 0)
            log.append((started, int(value)))
            await asyncio.sleep(0.0005)
    await cache.close()
    if fleet is not None:
        await fleet.close()
    return {"log": log}


async def analytics(args: dict[str, Any]) -> dict[str, Any]:
    """Track events numbered from a shared counter until ``total`` are taken, then drain.

    Slots are taken in blocks; each block's numbers are pushed to ``:recorded``
    once their track() calls returned, so a number there was accepted. A
    killed worker may have accepted events it never recorded: the test
    checks those by count. Exits once the fleet's outbox is empty.
    """
    fleet = coordinator(args)
    assert fleet is not None
    await fleet.start()
    manager = ExternalServiceManager(fleet=fleet)
    service = AnalyticsService(
        manager,
        AnalyticsConfig(
            url=args["url"],
            flush_size=100,
            flush_interval=0.2,
            max_buffer=1_000_000,
            max_retries=1,
            timeout=2.0,
        ),
    )
    # The default 30 s breaker recovery would idle the run after the outage.
    config, secrets = service._upstreams["analytics"]
    service._add_upstream("analytics", dataclasses.replace(config, recovery_timeout=1.0), secrets)
    await manager.start()
    await service.start()
    redis = Redis.from_url(args["redis_url"])
    prefix = args["prefix"]
    await until(args)
    pause = 1.0 / args["rate"]
    block = 20
    while True:
        last = int(await redis.incrby(prefix + ":slots", block))
        numbers = [n for n in range(last - block + 1, last + 1) if n <= args["total"]]
        for n in numbers:
            poison = n % args["poison_every"] == 0
            await service.track("soak", {"n": n, "poison": poison}, user_id=f"u{n % 97}")
            await asyncio.sleep(pause)
        if numbers:
            await redis.rpush(prefix + ":recorded", *numbers)
        if last >= args["total"]:
            break
    end = time.monotonic() + args["drain_seconds"]
    counts = await service.fleet_counts()
    while counts is not None and counts["waiting"] and time.monotonic() < end:
        await asyncio.sleep(0.2)
        counts = await service.fleet_counts()
    await manager.close()  # closes the service first
    await redis.aclose()
    await fleet.close()
    return {"stats": service.get_stats(), "counts": counts}


MODES = {
    "services": services,
    "flight": flight,
    "coherence": coherence,
    "analytics": analytics,
}

if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    result = asyncio.run(MODES[arguments["mode"]](arguments))
    print(json.dumps(result))
