"""``ads-infra bench fastapi``: the example app on cache hits against a minimal FastAPI+asyncpg app.

Both apps run under uvicorn (same options, one worker each) in
subprocesses on free loopback ports, against one database of the bench's
own holding one ad:

- ours: ``examples.fastapi_app.app:app`` on a config file that only points
  the database at that database (pool 5) and storage at a temporary folder;
  everything else is the shipped default (memory cache). ``GET /ads/{id}``
  is served from the cache after the first request;
- baseline: :mod:`benchmarks.minimal_app`, the same ``GET /ads/{id}`` reading
  PostgreSQL through a raw asyncpg pool (5) on every request.

A concurrent aiohttp client in this process loads each app in turn for a
fixed number of requests per round (rounds interleaved, the median round
counts), checking every status; p50/p99 are per request. The client shares
the machine with both servers, and with each alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from ads_infra.core.settings import DatabaseConfig
from ads_infra.database import DatabaseManager, migrate
from ads_infra.domain.entities import Ad, AdGroup, Campaign
from ads_infra.repositories import RepositoryFactory
from benchmarks.pg import bench_database, dsn
from benchmarks.report import Measurement, compare, row

AREA = "fastapi"
CALLERS = 32
USER = 1
ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.0
SETUP = (
    f"uvicorn (one worker, defaults) per app on loopback, {CALLERS} concurrent aiohttp callers; "
    "example app on its shipped config (memory cache) but database pool 5; minimal app "
    "asyncpg pool 5"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seed(url: str) -> int:
    """Migrate and store one ad of USER; return its id."""
    db = DatabaseManager(DatabaseConfig(url=url, pool_size=2, max_overflow=0))
    try:
        await migrate.upgrade(db)
        factory = RepositoryFactory(db)
        campaign = await factory.create_campaign_repository().create(
            Campaign(user_id=USER, name="Summer", daily_budget_micros=5_000_000)
        )
        assert campaign.id is not None
        group = await factory.create_group_repository().create(
            AdGroup(user_id=USER, campaign_id=campaign.id, name="Shoes")
        )
        assert group.id is not None
        ad = await factory.create_ads_repository().create(
            Ad(user_id=USER, campaign_id=campaign.id, group_id=group.id, name="Banner",
               headline="Save 30% on summer shoes today only",
               description="Free shipping on orders over $50. Limited time offer.",
               final_url="https://shop.example.com/summer?utm_source=ads",
               metadata={"tags": ["summer", "shoes"], "score": 0.87})
        )  # fmt: skip
        assert ad.id is not None
        return ad.id
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def _server(target: str, env: dict[str, str]) -> AsyncIterator[str]:
    """``uvicorn target`` on a free loopback port; its base URL, then stopped."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
        cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as probe:
            while True:
                try:
                    async with probe.get(f"{base}/docs") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if process.returncode is not None or time.monotonic() > deadline:
                    error = b""
                    if process.stderr is not None and process.returncode is not None:
                        error = await process.stderr.read()
                    raise RuntimeError(f"{target} did not start: {error.decode()[-2000:]}")
                await asyncio.sleep(0.2)
        yield base
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


def _example_config(url: str, folder: str) -> str:
    path = os.path.join(folder, "config.yml")
    with open(path, "w") as f:
        f.write(
            f"database:\n  url: {url}\n  pool_size: 5\n  max_overflow: 0\n"
            f"storage:\n  base_path: {os.path.join(folder, 'storage')}\n"
        )
    return path


async def run(*, quick: bool) -> list[Measurement]:
    requests, rounds = (400, 3) if quick else (2000, 7)
    with tempfile.TemporaryDirectory(prefix="ads-bench-fastapi-") as folder:
        async with bench_database() as url:
            ad_id = await _seed(url)
            example_env = {"ADS_INFRA_CONFIG": _example_config(url, folder)}
            minimal_env = {"ADS_BENCH_MINIMAL_DSN": dsn(url)}
            async with (
                _server("examples.fastapi_app.app:app", example_env) as ours_url,
                _server("benchmarks.minimal_app:app", minimal_env) as minimal_url,
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=CALLERS * 2),
                    headers={"X-User-Id": str(USER)},
                ) as client,
            ):

                async def get(url: str) -> Any:
                    async with client.get(url) as response:
                        body = await response.read()
                        assert response.status == 200, (response.status, body[:200])

                ours_ad, minimal_ad = f"{ours_url}/ads/{ad_id}", f"{minimal_url}/ads/{ad_id}"
                samples = await compare(
                    {"ours": lambda: get(ours_ad), "raw": lambda: get(minimal_ad)},
                    operations=requests,
                    rounds=rounds,
                    concurrency=CALLERS,
                    warmup=200,
                )
    return [
        row(
            AREA, "example app GET /ads/{id} (memory cache hits)", samples["ours"],
            "minimal FastAPI+asyncpg GET /ads/{id}", samples["raw"], concurrency=CALLERS,
            target=TARGET, unit="req/s",
            note="both under uvicorn on loopback; the minimal app queries PostgreSQL per request",
        )
    ]  # fmt: skip
