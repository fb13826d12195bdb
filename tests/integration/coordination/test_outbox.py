"""Durable analytics: four processes track events while one is SIGKILLed every few seconds.

The receiver is a local ``/v1/batch`` that answers 503 for a while and 400
to any batch holding a "poison" event (those are split down and dropped,
counted). At the end every event whose ``track()`` returned must have
arrived (by messageId, the same on every redelivery), the distinct
messageIds received must equal the fleet's ``delivered`` counter, and
``accepted = delivered + dropped`` with the outbox empty.

``ADS_OUTBOX_EVENTS`` sets the events (default 4,000; the issue's full run
is 40,000: ``ADS_OUTBOX_EVENTS=40000 ADS_OUTBOX_RATE=500 pytest -s
tests/integration/coordination/test_outbox.py``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from redis.asyncio import Redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = int(os.environ.get("ADS_OUTBOX_EVENTS", "4000"))
RATE = float(os.environ.get("ADS_OUTBOX_RATE", "200"))  # events/s per worker
KILL_EVERY = float(os.environ.get("ADS_OUTBOX_KILL_EVERY", "2.0"))
POISON_EVERY = 499


class Receiver:
    """A Segment-style endpoint recording each messageId it accepted, and how often."""

    def __init__(self) -> None:
        self.status = 200
        self.seen: collections.Counter[str] = collections.Counter()
        self.number: dict[str, int] = {}  # messageId -> the event's number
        self.refused = 0

    async def batch(self, request: web.Request) -> web.Response:
        if self.status != 200:
            return web.json_response({"error": "unavailable"}, status=self.status)
        messages = orjson.loads(await request.read())["batch"]
        if any(m["properties"]["poison"] for m in messages):
            self.refused += 1
            return web.json_response({"error": "malformed"}, status=400)
        for m in messages:
            self.seen[m["messageId"]] += 1
            self.number[m["messageId"]] = m["properties"]["n"]
        return web.json_response({"success": True})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    server = Receiver()
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/v1/batch", server.batch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def spawn(args: dict[str, Any]) -> asyncio.subprocess.Process:
    """A worker, started at once (a replacement) or at ``args["start_at"]``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.coordination.worker",
        json.dumps(args),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"ready", line
    proc.stdin.write(f"{args.get('start_at', time.time())}\n".encode())
    await proc.stdin.drain()
    proc.stdin.close()
    return proc


async def test_tracked_events_survive_sigkill_and_an_outage(
    receiver: tuple[Receiver, str], fleet_redis: tuple[str, str]
) -> None:
    server, url = receiver
    redis_url, prefix = fleet_redis
    args: dict[str, Any] = {"mode": "analytics", "backend": "redis", "redis_url": redis_url}
    args |= {"prefix": prefix, "url": url, "total": EVENTS, "rate": RATE}
    args |= {"poison_every": POISON_EVERY, "claim_after": 2.0, "drain_seconds": 60.0}
    redis = Redis.from_url(redis_url)
    procs = await asyncio.gather(*(spawn(args) for _ in range(4)))
    began = time.monotonic()
    kills = 0
    outage = (1.0, 4.0)  # seconds into the run the endpoint answers 503
    try:
        while int(await redis.get(prefix + ":slots") or 0) < EVENTS:
            await asyncio.sleep(0.1)
            elapsed = time.monotonic() - began
            server.status = 503 if outage[0] <= elapsed < outage[1] else 200
            if elapsed >= KILL_EVERY * (kills + 1):
                victim = random.randrange(4)
                procs[victim].send_signal(signal.SIGKILL)
                await procs[victim].wait()
                kills += 1
                procs[victim] = await spawn(args)
        server.status = 200
        results = []
        for proc in procs:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode == 0, err.decode()[-2000:]
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        took = time.monotonic() - began
        raw = await redis.hgetall(f"{prefix}:outbox:analytics:counts")
        counts = {k.decode(): int(v) for k, v in raw.items()}
        waiting = await redis.xlen(f"{prefix}:outbox:analytics")
        recorded = {int(n) for n in await redis.lrange(prefix + ":recorded", 0, -1)}
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await redis.aclose()
    received = set(server.number.values())
    by_number = collections.Counter(server.number.values())
    duplicates = sum(server.seen.values()) - len(server.seen)
    poisoned = {n for n in recorded if n % POISON_EVERY == 0}
    missing = sorted(recorded - poisoned - received)
    print(
        f"outbox: {kills} SIGKILLs in {took:.1f} s; accepted {counts.get('accepted')}, "
        f"delivered {counts.get('delivered')}, dropped {counts.get('dropped')}, waiting "
        f"{waiting}; recorded {len(recorded)}, received {len(server.seen)} distinct "
        f"({duplicates} duplicate deliveries), missing {len(missing)}; 400s {server.refused}"
    )
    assert kills >= 1
    assert waiting == 0
    assert not missing, missing[:20]
    accepted, delivered = counts["accepted"], counts["delivered"]
    dropped = counts.get("dropped", 0)
    assert accepted == delivered + dropped, counts
    assert delivered == len(server.seen), (delivered, len(server.seen))
    # A number is tracked once: redeliveries carry its one messageId.
    assert max(by_number.values()) == 1
    # Every drop is a poison event (each refused alone); every recorded poison is dropped.
    assert len(poisoned) <= dropped <= len(range(POISON_EVERY, EVENTS + 1, POISON_EVERY))
    # A killed worker loses at most the block of numbers it had taken, never an accepted event.
    assert accepted >= len(recorded)
