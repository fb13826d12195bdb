"""The example package's status-page service, run by ``services.plugins`` against a real
HTTP server on 127.0.0.1: retries, breaker status, health and lifecycle come from the
manager, as for the built-in services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ads_infra.containers import create_container
from ads_infra.core.lifecycle import running
from ads_infra.entrypoints.cli import collect_health
from tests.services import free_port

pytestmark = [
    pytest.mark.usefixtures("example_installed"),
    pytest.mark.filterwarnings("error::ResourceWarning"),
]


class StatusPage:
    """A status page's API: PUT /v1/components/{name}; the first ``failures`` answers 503."""

    def __init__(self) -> None:
        self.url = ""
        self.failures = 0
        self.received: list[tuple[str, dict[str, Any], str]] = []

    async def put(self, request: web.Request) -> web.Response:
        if self.failures:
            self.failures -= 1
            return web.json_response({"error": "busy"}, status=503)
        body = await request.json()
        self.received.append(
            (request.match_info["name"], body, request.headers.get("Authorization", ""))
        )
        return web.json_response({"id": request.match_info["name"], **body})

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})


@pytest.fixture
async def status_page() -> AsyncIterator[StatusPage]:
    page = StatusPage()
    app = web.Application()
    app.router.add_put("/v1/components/{name}", page.put)
    app.router.add_get("/health", page.health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    page.url = f"http://127.0.0.1:{port}"
    yield page
    await runner.cleanup()


def _config_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(
        f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/ads.db\n"
        f"storage:\n  base_path: {tmp_path}/storage\n"
        "services:\n  plugins:\n    status_page:\n"
        f"      url: {url}\n      api_key: sk-status-test\n      max_retries: 2\n"
    )
    return path


async def test_the_plugin_named_in_yaml_sends_through_the_manager(
    tmp_path: Path, status_page: StatusPage
) -> None:
    container = create_container(_config_file(tmp_path, status_page.url))
    async with running(container):
        service = container.services.plugins()["status_page"]
        manager = container.services.manager()
        assert manager.has_service("status_page")  # registered by the container's start
        status_page.failures = 1  # one 503, retried by the manager (PUT is idempotent)
        answer = await service.report("cache", healthy=True, detail="sqlite")
        assert answer == {"id": "cache", "status": "operational", "detail": "sqlite"}
        assert status_page.received == [
            ("cache", {"status": "operational", "detail": "sqlite"}, "Bearer sk-status-test")
        ]
        status = manager.get_service_status("status_page")
        assert status["state"] == "closed" and status["healthy"]
        assert "sk-status-test" not in repr(status) and "sk-status-test" not in repr(container)
    reports = await collect_health(create_container(_config_file(tmp_path, status_page.url)))
    (report,) = [r for r in reports if r.component == "services.status_page"]
    assert report.healthy and report.target.startswith("http://127.0.0.1:")


async def test_an_unreachable_status_page_is_an_unhealthy_report(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    reports = await collect_health(create_container(_config_file(tmp_path, dead)))
    (report,) = [r for r in reports if r.component == "services.status_page"]
    assert not report.healthy and report.target == dead and report.detail
