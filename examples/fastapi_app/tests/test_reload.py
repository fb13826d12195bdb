"""The example app under uvicorn, reconfigured by SIGHUP while it serves traffic.

A real process (uvicorn on a free loopback port, SQLite in a temporary
folder) calls a real aiohttp upstream (an OpenAI-compatible server on
loopback) for every ad it creates; the upstream records when each call
arrived. The assertions are about the rate the upstream observed, read from
those timestamps: the paced limit, not a speed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from ads_infra.containers import create_container
from ads_infra.core.lifecycle import running
from ads_infra.database import migrate
from ads_infra.domain import AdGroup, Campaign

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
HIGH, LOW = 40, 5  # services.ai.rate_limit before and after the reload (per second)
API_KEY = "sk-reload-test-secret"
USER = {"X-User-Id": "1"}


class Upstream:
    """An OpenAI-compatible chat completions server noting each call's arrival."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.url = ""

    async def completions(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        body = await request.json()
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Run Further\nShoes that grip."}}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
            }
        )  # fmt: skip

    def count(self, start: float, end: float) -> int:
        return sum(1 for t in self.arrivals if start <= t < end)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.completions)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


def _document(tmp: Path, upstream: str, rate: int) -> dict[str, Any]:
    return {
        "database": {"url": f"sqlite+aiosqlite:///{tmp / 'ads.db'}"},
        "storage": {"base_path": str(tmp / "storage")},
        "services": {
            "ai": {
                "provider": "openai",
                "base_url": upstream,
                "api_key": API_KEY,
                "rate_limit": rate,
                "max_retries": 0,
            }
        },
    }


def _write(path: Path, document: dict[str, Any]) -> None:
    # Written beside and renamed: the process never reads half a file.
    scratch = path.with_suffix(".tmp")
    scratch.write_text(yaml.safe_dump(document))
    scratch.replace(path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class App:
    """The uvicorn process, its port and its log."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def lines(self, text: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if text in line]

    async def wait_for_line(self, text: str, count: int = 1) -> list[str]:
        """The log's lines holding ``text`` once there are ``count`` (or fail after 20 s)."""
        for _ in range(400):
            found = self.lines(text)
            if len(found) >= count:
                return found
            assert self.process.poll() is None, self.log.read_text()
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {text!r} line in the log:\n{self.log.read_text()}")


@pytest.fixture
async def seeded(tmp_path: Path, upstream: Upstream) -> tuple[Path, int, int]:
    """The config file, and a campaign and group of user 1 in the migrated database."""
    config = tmp_path / "config.yml"
    _write(config, _document(tmp_path, upstream.url, HIGH))
    container = create_container(config)
    async with running(container):
        await migrate.upgrade(container.database.manager())
        campaign = await container.repositories.campaigns().create(
            Campaign(user_id=1, name="Launch")
        )
        group = await container.repositories.groups().create(
            AdGroup(user_id=1, campaign_id=campaign.id, name="Broad")
        )
    return config, campaign.id, group.id


@pytest.fixture
def app(tmp_path: Path, seeded: tuple[Path, int, int]) -> Iterator[App]:
    config = seeded[0]
    port = _free_port()
    log = tmp_path / "app.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADS_")}
    env["ADS_INFRA_CONFIG"] = str(config)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "examples.fastapi_app.app:app",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield App(process, port, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _ready(app: App) -> None:
    async with httpx.AsyncClient(base_url=app.url) as http:
        for _ in range(300):
            assert app.process.poll() is None, app.log.read_text()
            try:
                if (await http.get("/metrics")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"the app did not start:\n{app.log.read_text()}")


async def _traffic(app: App, campaign: int, group: int, stop: asyncio.Event) -> list[int]:
    """Create ads with AI copy from 16 concurrent callers until ``stop``; their statuses."""
    statuses: list[int] = []
    body = {"campaign_id": campaign, "group_id": group, "name": "ad", "generate_copy_for": "shoes"}
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:

        async def caller() -> None:
            while not stop.is_set():
                statuses.append((await http.post("/ads", json=body, headers=USER)).status_code)

        await asyncio.gather(*(caller() for _ in range(16)))
    return statuses


async def _metric(app: App, result: str) -> float:
    async with httpx.AsyncClient(base_url=app.url) as http:
        text = (await http.get("/metrics")).text
    line = f'ads_config_reloads_total{{result="{result}"}} '
    return float(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])


async def test_sighup_lowers_the_rate_limit_and_bad_reloads_keep_the_old_one(
    app: App, seeded: tuple[Path, int, int], upstream: Upstream, tmp_path: Path
) -> None:
    config, campaign, group = seeded
    await _ready(app)
    stop = asyncio.Event()
    traffic = asyncio.create_task(_traffic(app, campaign, group, stop))
    try:
        await asyncio.sleep(2.5)
        before = time.monotonic()
        # The old limit is in force: far more than the new limit in one second.
        assert upstream.count(before - 1.0, before) > 3 * LOW, upstream.arrivals[-50:]

        _write(config, _document(tmp_path, upstream.url, LOW))
        hup = time.monotonic()
        app.process.send_signal(signal.SIGHUP)
        applied = await app.wait_for_line("config reloaded from SIGHUP")
        await asyncio.sleep(2.2 - (time.monotonic() - hup))
        # Within a second of the signal the upstream sees the new rate (one more
        # call may fall on the window's edge: pacing is one per 1/LOW seconds).
        after = upstream.count(hup + 1.0, hup + 2.0)
        assert 1 <= after <= LOW + 1, (after, applied)
        assert "services.ai.rate_limit (40 -> 5)" in applied[0]

        # An invalid file: one error line, the configuration in force stays.
        config.write_text("services:\n  ai:\n    rate_limit: -3\n")
        app.process.send_signal(signal.SIGHUP)
        failed = await app.wait_for_line("config reload from SIGHUP")
        bad = [line for line in failed if "failed" in line]
        assert len(bad) == 1 and "services.ai.rate_limit: must be >= 1" in bad[0], failed
        mark = time.monotonic()
        await asyncio.sleep(1.2)
        assert 1 <= upstream.count(mark + 0.1, mark + 1.1) <= LOW + 1

        # A key only a restart can change: refused, named.
        document = _document(tmp_path, upstream.url, LOW)
        document["database"]["url"] = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
        _write(config, document)
        app.process.send_signal(signal.SIGHUP)
        refused = await app.wait_for_line("refused")
        assert len(refused) == 1 and "database.url needs a restart" in refused[0], refused
    finally:
        stop.set()
        statuses = await traffic
    assert set(statuses) == {201}, sorted(set(statuses))
    assert (await _metric(app, "applied"), await _metric(app, "invalid")) == (1.0, 1.0)
    assert await _metric(app, "refused") == 1.0
    log = app.log.read_text()
    assert API_KEY not in log
    # One line per reload: applied, invalid, refused.
    assert len(app.lines("config reload")) == 3, app.lines("config reload")
